"""The JSON-in, JSON-out protocol of ``granero_side.py`` and ``feast_side.py`` (stdlib only, so
Feast's virtualenv can import it): ``python -m bench.<side> COMMAND < args.json``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable


def run_command(commands: dict[str, Callable[[dict], dict]]) -> None:
    """Run ``commands[argv[1]]`` on the JSON object read from stdin; print its result as JSON.

    Whatever the libraries print goes to stderr, so stdout carries only the result.
    """
    command, args = sys.argv[1], json.loads(sys.stdin.read() or "{}")
    result_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    result = commands[command](args)
    result_stream.write(json.dumps(result, default=str))
    result_stream.close()
