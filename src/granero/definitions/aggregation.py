"""Windowed aggregations of a view's events: the definition and its checks (the rule is in
``granero.aggregation``; ``docs/aggregations.md`` states it for users).

Pure data and pure checks, no numpy: the definition language stays light. The checks raise
``ValueError`` with a message that starts with the field path (``aggregations[1].window``), so the
enclosing definition turns it into a ``DefinitionError`` naming the file and the definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import field_validator, model_validator

from granero.definitions.base import Model, check_identifier
from granero.definitions.duration import Duration, parse_duration

FunctionName = Literal[
    "count", "sum", "mean", "min", "max", "first", "last", "variance", "stddev", "distinct_count"
]
_NUMBERS = ("int32", "int64", "float32", "float64")
_SCALARS = (*_NUMBERS, "bool", "string", "bytes", "timestamp")
INPUT_DTYPES: dict[str, tuple[str, ...]] = {
    "count": _SCALARS,
    "sum": _NUMBERS,
    "mean": _NUMBERS,
    "variance": _NUMBERS,
    "stddev": _NUMBERS,
    "min": (*_NUMBERS, "timestamp"),
    "max": (*_NUMBERS, "timestamp"),
    "first": _SCALARS,
    "last": _SCALARS,
    "distinct_count": ("int32", "int64", "bool", "string", "bytes", "timestamp"),
}
"""Which column dtypes each function accepts (distinct counts refuse floats: NaN and -0.0 make
"distinct" ill-defined)."""

_SECOND = timedelta(seconds=1)
HOP_LADDER = (timedelta(days=1), timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=1), _SECOND)
"""Hops a default is chosen from, largest first."""
TILES_PER_SMALLEST_WINDOW = 24
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def output_dtype(function: str, dtype: str) -> str:
    """The dtype of an aggregate's values (the table in docs/aggregations.md)."""
    if function in ("count", "distinct_count"):
        return "int64"
    if function == "sum":
        return "int64" if dtype.startswith("int") else "float64"
    if function in ("mean", "variance", "stddev"):
        return "float64"
    return dtype


def window_label(window: timedelta) -> str:
    """``7d``, ``90m``, ``45s``: the largest unit that writes the window exactly."""
    seconds = int(window.total_seconds())
    unit, size = next((u, s) for u, s in _UNITS if seconds % s == 0)
    return f"{seconds // size}{unit}"


class Aggregation(Model):
    """``function`` of the non-null values of source ``column`` over the last ``window`` of events.

    ``name`` defaults to ``<column>_<function>_<window>``, e.g. ``fare_mean_7d``.
    """

    column: str
    function: FunctionName
    window: Duration
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            window = parse_duration(data.get("window"))
            if isinstance(window, timedelta) and window > timedelta(0) and not window % _SECOND:
                data = {**data, "name": f"{data.get('column')}_{data.get('function')}_{window_label(window)}"}
        return data

    @field_validator("column", "name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return check_identifier(value, "name")

    @field_validator("window")
    @classmethod
    def _whole_positive_seconds(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value % _SECOND:
            raise ValueError(f"a window is a positive whole number of seconds, got {value}")
        return value


def default_hop(windows: Sequence[timedelta]) -> timedelta:
    """The largest ladder hop that divides every window and is at most the smallest window / 24
    (so the smallest window spans at least 24 tiles); 1s when no larger one fits."""
    smallest = min(windows)
    return next(
        hop for hop in HOP_LADDER
        if hop == _SECOND or (hop * TILES_PER_SMALLEST_WINDOW <= smallest and all(not w % hop for w in windows))
    )


def resolve_hop(hop: timedelta | None, aggregations: Sequence[Aggregation]) -> timedelta:
    """The view's hop: the declared one, checked against every window, or the default."""
    if not aggregations:
        raise ValueError("aggregations: a hop needs at least one aggregation")
    if hop is None:
        return default_hop([a.window for a in aggregations])
    if hop <= timedelta(0) or hop % _SECOND:
        raise ValueError(f"hop: a hop is a positive whole number of seconds, got {hop}")
    for index, aggregation in enumerate(aggregations):
        if aggregation.window % hop:
            raise ValueError(
                f"aggregations[{index}].window: {window_label(aggregation.window)} is not a multiple "
                f"of the hop {window_label(hop)}"
            )
    return hop


def check_aggregations(
    aggregations: Sequence[Aggregation], columns: Mapping[str, str], taken: Sequence[str] = ()
) -> None:
    """Each aggregation reads a known column whose dtype its function accepts, and names are
    unique among themselves and the view's other features (``taken``)."""
    seen = set(taken)
    for index, aggregation in enumerate(aggregations):
        where = f"aggregations[{index}]"
        dtype = columns.get(aggregation.column)
        if dtype is None:
            raise ValueError(f"{where}.column: unknown column {aggregation.column!r}; the source has {sorted(columns)}")
        accepted = INPUT_DTYPES[aggregation.function]
        if dtype not in accepted:
            raise ValueError(
                f"{where}.function: {aggregation.function} does not apply to column "
                f"{aggregation.column!r} of dtype {dtype}; it takes {', '.join(accepted)}"
            )
        if aggregation.name in seen:
            raise ValueError(f"{where}.name: {aggregation.name!r} is already a feature name of this view")
        seen.add(aggregation.name)
