"""Seeded random histories built to hit every edge of the point-in-time rule.

Three views share one entity table:

- ``pair``: composite int key (a int64, b int32) drawn so that string forms collide
  ((1, 23) vs (12, 3)); created times present, missing, equal or much later (late rows).
- ``text``: composite string key whose concatenations collide ("a_b"+"c" vs "a"+"b_c").
- ``single``: one int key, no created field at all.

Rows include exact duplicates, full ties with different values, ties on event time broken by
created, null feature values, entity rows exactly at event and at event + ttl (and 1 µs past it),
entity rows with no history, null keys, a null timestamp, and duplicated entity rows. Times are
integer microseconds from ``BASE``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tests.offline.oracle import OracleView

BASE = datetime(2026, 1, 1, tzinfo=UTC)
SECOND = 1_000_000

VIEWS = {
    "pair": OracleView("pair", ["a", "b"], 40 * SECOND, ["f_double", "f_int", "f_list"]),
    "text": OracleView("text", ["s", "t"], 15 * SECOND, ["f_str", "f_bool"]),
    "single": OracleView("single", ["a"], 120 * SECOND, ["f_double", "f_int"]),
}
KEY_DTYPES = {"a": "int64", "b": "int32", "s": "string", "t": "string"}
FEATURE_DTYPES = {
    "f_double": "float64",
    "f_int": "int64",
    "f_list": "list<int64>",
    "f_str": "string",
    "f_bool": "bool",
}
_KEY_VALUES = {
    "a": [1, 12, 123],
    "b": [3, 23, 0],
    "s": ["a_b", "a", "ab", ""],
    "t": ["c", "b_c", "_c", "bc"],
}
_UNKNOWN_KEY = {"a": 999, "b": 99, "s": "zz", "t": "zz"}
_SPAN = 300 * SECOND


def as_time(micros: int | None) -> datetime | None:
    return None if micros is None else BASE + timedelta(microseconds=micros)


def _maybe(rng: random.Random, value, p_null: float = 0.2):
    return None if rng.random() < p_null else value


def _feature_value(rng: random.Random, feature: str):
    make = {
        "f_double": lambda: float(rng.choice([0.5, 1.25, -3.0, 7.75, 2.0])),
        "f_int": lambda: rng.randint(-3, 3),
        "f_list": lambda: [rng.randint(0, 2) for _ in range(rng.randint(0, 2))],
        "f_str": lambda: rng.choice(["x", "y", "z", ""]),
        "f_bool": lambda: rng.random() < 0.5,
    }
    return _maybe(rng, make[feature]())


def _created(rng: random.Random, view: OracleView, event: int) -> int | None:
    if view.name == "single":
        return None
    kind = rng.random()
    if kind < 0.2:
        return None
    if kind < 0.3:
        return event + 1000 * SECOND  # a late row: written long after its event time
    return event + rng.choice([0, 1, SECOND, 5 * SECOND])


def feature_rows(rng: random.Random, view: OracleView, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        row = {k: rng.choice(_KEY_VALUES[k]) for k in view.keys}
        row["event"] = rng.randrange(0, _SPAN // SECOND) * SECOND + rng.choice(
            [0, 0, 1, SECOND // 2]
        )
        row["created"] = _created(rng, view, row["event"])
        row.update({f: _feature_value(rng, f) for f in view.features})
        rows.append(row)
    rows += [dict(r) for r in rng.sample(rows, n // 10)]  # exact duplicates
    rows += [
        _full_tie(rng, r, view) for r in rng.sample(rows, n // 10)
    ]  # same version, other values
    rows += [
        _event_tie(rng, r, view) for r in rng.sample(rows, n // 10)
    ]  # same event, other created
    rng.shuffle(rows)  # out of order
    return rows


def _full_tie(rng: random.Random, row: dict, view: OracleView) -> dict:
    return {**row, **{f: _feature_value(rng, f) for f in view.features}}


def _event_tie(rng: random.Random, row: dict, view: OracleView) -> dict:
    return {
        **row,
        "created": _created(rng, view, row["event"]),
        **{f: _feature_value(rng, f) for f in view.features},
    }


def entity_rows(rng: random.Random, tables: dict[str, list[dict]], n: int) -> list[dict]:
    """Entity rows over the keys of every view, many placed exactly on a boundary of some row."""
    rows = []
    for _ in range(n):
        row = {k: rng.choice(_KEY_VALUES[k]) for k in ("a", "b", "s", "t")}
        view_name = rng.choice(list(VIEWS))
        anchor = rng.choice(tables[view_name])
        row.update({k: anchor[k] for k in VIEWS[view_name].keys})
        ttl = VIEWS[view_name].ttl
        row["ts"] = anchor["event"] + rng.choice(
            [0, 0, ttl, ttl, ttl + 1, -1, 1, rng.randrange(-ttl, 2 * ttl)]
        )
        if rng.random() < 0.08:
            row.update(
                {k: _UNKNOWN_KEY[k] for k in rng.sample(list(_UNKNOWN_KEY), 1)}
            )  # no history
        if rng.random() < 0.04:
            row[rng.choice(["a", "s"])] = None
        row["label"] = rng.randint(0, 1)
        rows.append(row)
    rows[0]["ts"] = None
    for number, row in enumerate(rows):
        row["row"] = number
    return rows + [dict(r) for r in rng.sample(rows, n // 10)]  # duplicated entity rows


def generate(
    seed: int, n_rows: int = 60, n_entities: int = 40
) -> tuple[list[dict], dict[str, list[dict]]]:
    rng = random.Random(seed)
    tables = {name: feature_rows(rng, view, n_rows) for name, view in VIEWS.items()}
    return entity_rows(rng, tables, n_entities), tables
