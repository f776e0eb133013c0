"""What every command shares: the ``--repo`` and ``--json`` options, output, and exit codes.

Exit codes: 0 success; 1 unexpected failure; otherwise the ``exit_code`` of the GraneroError
raised (2 invalid definition/config/request, 3 registry, 4 breaking change refused,
5 materialization, 6 retrieval, 7 online store unavailable, 8 not found, 9 verification mismatch).
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from granero.errors import GraneroError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
error_console = Console(stderr=True)

RepoOption = Annotated[
    Path,
    typer.Option("--repo", "-r", envvar="GRANERO_REPO", help="Feature repo folder (holds feature_store.yaml)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def open_store(repo: Path):  # -> FeatureStore (imported lazily to keep --help fast)
    from granero.feature_store import FeatureStore

    return FeatureStore(repo)


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else, so scripts can pipe it."""
    typer.echo(json.dumps(data, indent=2, default=str))


def handles_errors(command: F) -> F:
    """Turn GraneroErrors into a red message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GraneroError as error:
            error_console.print(f"[bold red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


def shown_value(value: Any, dtype: str) -> Any:
    """A feature value as people and JSON should see it: a float32 by the shortest decimal that
    is that float32 (``1.2``, not the float64 ``1.2000000476837158`` it widens to); lists too."""
    if dtype == "float32" and isinstance(value, float):
        return shortest_float32(value)
    if dtype == "list<float32>" and isinstance(value, list):
        return [shortest_float32(v) if isinstance(v, float) else v for v in value]
    return value


def shortest_float32(value: float) -> float:
    """The float with the fewest significant digits that rounds to the same float32 as ``value``."""
    if not math.isfinite(value):
        return value
    target = _as_float32(value)
    for digits in range(1, 10):  # 9 significant digits always identify a float32
        candidate = float(f"{target:.{digits}g}")
        if _as_float32(candidate) == target:
            return candidate
    return target


def _as_float32(value: float) -> float:
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:  # beyond float32's range: not a float32 value, shown as it is
        return value
