"""A brute-force reference for windowed aggregates, written from the rule alone.

For each entity row (keys, t): keep the events whose typed keys are equal and whose time lies in
``[tail, t]``, ``tail = floor_to_hop(t - W)``; compute the function in plain Python over the
non-null values. A null key or a null t: nulls. No tiles, no numpy, no cleverness.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

_BELOW = float("-inf")


def floor_to_hop(x: int, hop: int) -> int:
    return x - x % hop


def _order_value(value: Any) -> tuple:
    """NaN above every number."""
    if isinstance(value, float) and math.isnan(value):
        return (1, 0.0)
    return (0, value)


def _fsum(values: list) -> float:
    return math.nan if any(math.isnan(v) for v in values) else math.fsum(values)


def _variance(values: list) -> float | None:
    if len(values) < 2:
        return None
    mean = _fsum(values) / len(values)
    return _fsum([(v - mean) ** 2 for v in values]) / (len(values) - 1)


def _extreme(values: list, greatest: bool) -> Any:
    if not values:
        return None
    return (max if greatest else min)(values, key=_order_value)


def _endpoint(rows: list[dict], column: str, last: bool) -> Any:
    records = [
        (r["ts"], _BELOW if r["created"] is None else r["created"], _order_value(r[column]), r[column])
        for r in rows if r[column] is not None
    ]
    if not records:
        return None
    if last:
        return max(records)[3]
    first = min(records, key=lambda rec: rec[:2])[:2]
    return max(rec for rec in records if rec[:2] == first)[3]


def compute(function: str, rows: list[dict], column: str, dtype: str) -> Any:
    """``function`` of ``column`` over the events ``rows`` (records, None for null)."""
    values = [r[column] for r in rows if r[column] is not None]
    floats = [float(v) for v in values] if dtype in ("int32", "int64", "float32", "float64") else values
    results = {
        "count": lambda: len(values),
        "sum": lambda: sum(values) if dtype.startswith("int") else (_fsum(floats) if floats else 0.0),
        "mean": lambda: _fsum(floats) / len(floats) if floats else None,
        "min": lambda: _extreme(values, greatest=False),
        "max": lambda: _extreme(values, greatest=True),
        "first": lambda: _endpoint(rows, column, last=False),
        "last": lambda: _endpoint(rows, column, last=True),
        "variance": lambda: _variance(floats),
        "stddev": lambda: None if (v := _variance(floats)) is None else math.sqrt(v),
        "distinct_count": lambda: len(set(values)),
    }
    return results[function]()


def oracle(entities: pd.DataFrame, events: pd.DataFrame, keys: list[str], hop: int, aggregates: list) -> dict:
    """Per aggregate output name, the list of values for the entity rows in order.

    Frames hold Python objects: keys, ``t`` / ``ts`` / ``created`` as int microseconds or None.
    """
    out: dict[str, list] = {a.output: [] for a in aggregates}
    for row in entities.to_dict("records"):
        mine = events
        for key in keys:
            mine = mine[mine[key].map(lambda v, want=row[key]: v is not None and v == want).astype(bool)]
        asked = row["t"] is not None and all(row[k] is not None for k in keys)
        inside = {w: _covered(mine, row["t"], w, hop) for w in {a.window for a in aggregates}} if asked else {}
        for a in aggregates:
            out[a.output].append(compute(a.function, inside[a.window], a.column, a.dtype) if asked else None)
    return out


def _covered(events: pd.DataFrame, t: int, window: int, hop: int) -> list[dict]:
    tail = floor_to_hop(t - window, hop)
    return events[events["ts"].map(lambda ts: ts is not None and tail <= ts <= t).astype(bool)].to_dict("records")
