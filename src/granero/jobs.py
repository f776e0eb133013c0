"""What every ``spark_jobs/`` entry point shares: output lines on stdout, errors as exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from granero.errors import GraneroError


def run_job(work: Callable[[], Iterable[str]]) -> int:
    """Print each line ``work`` produces; a GraneroError goes to stderr and sets the exit code
    (the CLI's codes: 5 materialization failed, 6 retrieval failed, 2 invalid input...)."""
    try:
        for line in work():
            print(line)
    except GraneroError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0
