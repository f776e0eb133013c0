"""A brute-force reference for point-in-time retrieval, written from the shared rule alone.

For every entity row and view: take the feature rows whose keys are equal (as typed values) and
whose event time lies in [ts - ttl, ts]; the answer is the greatest by (event, created with a
missing created lowest, then the feature values in declared order with nulls lowest — the
full-tie rule). No qualifying row, a null key or a null ts: nulls. Plain Python over records, no
Spark, no cleverness: it scans every row for every entity row.

Times are plain integers (microseconds) so comparisons are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OracleView:
    name: str
    keys: list[str]
    ttl: int
    features: list[str]
    """All features of the view, in declared order (the full-tie rule compares all of them)."""


def _nulls_lowest(value: Any) -> tuple:
    return (0,) if value is None else (1, value)


def version_order(row: dict, view: OracleView) -> tuple:
    """Greater is newer: event, then created (missing lowest), then values (nulls lowest)."""
    return (
        row["event"],
        _nulls_lowest(row["created"]),
        tuple(_nulls_lowest(row[f]) for f in view.features),
    )


def lookup(entity: dict, rows: list[dict], view: OracleView) -> dict | None:
    """The feature row a training set must carry for ``entity``, or None."""
    ts = entity["ts"]
    if ts is None or any(entity[k] is None for k in view.keys):
        return None
    candidates = [
        row
        for row in rows
        if all(row[k] == entity[k] for k in view.keys) and ts - view.ttl <= row["event"] <= ts
    ]
    return max(candidates, key=lambda row: version_order(row, view), default=None)


def expected_values(
    entity: dict, rows: list[dict], view: OracleView, requested: list[str]
) -> list[Any]:
    found = lookup(entity, rows, view)
    return [None if found is None else found[f] for f in requested]


def latest_per_key(rows: list[dict], view: OracleView) -> dict[tuple, dict]:
    """The online rule: per key, the greatest row by (event, created), full ties by features."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in view.keys)
        if key not in latest or version_order(row, view) > version_order(latest[key], view):
            latest[key] = row
    return latest
