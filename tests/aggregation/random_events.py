"""Seeded random events and entity rows built to hit every edge of the window rule.

Times sit on hop boundaries, one microsecond either side of them, and at random; some histories
start before 1970 (negative microseconds, where a naive ``%`` would misalign); entity rows land
exactly on events, on tails (t - W on an event's hop), on hop boundaries, and before any event.
Keys are composite (int64, string) with near-collisions and nulls; created times tie, are null or
are later than the event (late arrivals); the values repeat (ties), include nulls, NaN and ±0.0.
The events are shuffled, so nothing may rely on their input order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from granero.aggregation.engine import Aggregate, AggregationSpec
from granero.definitions.aggregation import INPUT_DTYPES

SECOND = 1_000_000
KEYS = {"a": "int64", "s": "string"}
COLUMNS = {
    "f64": "float64",
    "f32": "float32",
    "i64": "int64",
    "i32": "int32",
    "txt": "string",
    "flag": "bool",
    "when": "timestamp",
}
_VALUES = {
    "f64": [0.5, -1.25, 3.0, 0.1, 1e10, -0.0, 0.0, math.nan, None, 0.1],
    "f32": [0.5, -1.25, 3.0, 0.375, None],
    "i64": [-5, 0, 3, 3, 2**40, None],
    "i32": [-3, 0, 1, 7, None],
    "txt": ["a", "b", "ab", "", None],
    "flag": [True, False, None],
}


@dataclass(frozen=True)
class Case:
    hop: int
    windows: list[int]
    events: list[dict]
    entities: list[dict]

    @property
    def aggregates(self) -> list[Aggregate]:
        return [
            Aggregate(f"{column}_{function}_{i}", column, function, window, dtype)
            for column, dtype in COLUMNS.items()
            for function, accepted in INPUT_DTYPES.items() if dtype in accepted
            for i, window in enumerate(self.windows)
        ]

    @property
    def spec(self) -> AggregationSpec:
        return AggregationSpec(KEYS, self.hop, self.aggregates)


def random_case(seed: int, n_events: int = 60, n_entities: int = 30, hops: int = 11) -> Case:
    """Events over ``hops + 1`` hops (fewer hops: more events per tile)."""
    rng = random.Random(seed)
    hop = rng.choice([10, 60, 3600]) * SECOND
    windows = sorted({hop * rng.randint(1, 3), hop * rng.randint(2, 8)})
    origin = rng.choice([1_767_225_600 * SECOND, -4 * hop - 7, 0])
    events = [_event(rng, origin, hop, hops) for _ in range(n_events)]
    times = [e["ts"] for e in events if e["ts"] is not None]
    entities = [_entity(rng, origin, hop, windows, times) for _ in range(n_entities)]
    return Case(hop, windows, events, entities)


def _time(rng: random.Random, origin: int, hop: int, hops: int = 11) -> int:
    offset = rng.choice([0, 1, hop - 1, hop // 2, rng.randrange(hop)])
    return origin + rng.randint(0, hops) * hop + offset


def _key(rng: random.Random) -> dict:
    return {
        "a": None if rng.random() < 0.04 else rng.choice([1, 2, 12]),
        "s": None if rng.random() < 0.04 else rng.choice(["x", "y", "x_"]),
    }


def _event(rng: random.Random, origin: int, hop: int, hops: int) -> dict:
    ts = None if rng.random() < 0.03 else _time(rng, origin, hop, hops)
    created = rng.choice([None, 0, 5, 5, 10 * hop]) if ts is not None else None
    event = {**_key(rng), "ts": ts, "created": None if created is None else ts + created}
    event |= {column: rng.choice(values) for column, values in _VALUES.items()}
    event["when"] = rng.choice([None, origin, origin + 1, origin - 2 * hop])
    return event


def _entity(rng: random.Random, origin: int, hop: int, windows: list[int], times: list[int]) -> dict:
    event = rng.choice(times) if times else origin
    choices = [
        event, event - 1, event + 1, event + rng.choice(windows), event - event % hop + rng.choice(windows),
        event - event % hop + rng.choice(windows) + hop - 1, _time(rng, origin, hop), origin - hop,
    ]
    t = None if rng.random() < 0.03 else rng.choice(choices)
    return {**_key(rng), "t": t}


def _timestamps(values: list) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def events_table(events: list[dict]) -> pa.Table:
    columns = {
        "a": pa.array([e["a"] for e in events], pa.int64()),
        "s": pa.array([e["s"] for e in events], pa.string()),
        "event_timestamp": _timestamps([e["ts"] for e in events]),
        "created_timestamp": _timestamps([e["created"] for e in events]),
    }
    for column, dtype in COLUMNS.items():
        values = [e[column] for e in events]
        columns[column] = _timestamps(values) if dtype == "timestamp" else pa.array(values, _ARROW[dtype])
    return pa.table(columns)


def entities_table(entities: list[dict]) -> pa.Table:
    return pa.table({
        "a": pa.array([e["a"] for e in entities], pa.int64()),
        "s": pa.array([e["s"] for e in entities], pa.string()),
        "event_timestamp": _timestamps([e["t"] for e in entities]),
        "label": pa.array(range(len(entities)), pa.int64()),
    })


def frame(records: list[dict]) -> pd.DataFrame:
    """Python objects, None for nulls (the oracle's input)."""
    names = list(records[0]) if records else []
    return pd.DataFrame({name: pd.Series([r[name] for r in records], dtype=object) for name in names})


_ARROW = {
    "float64": pa.float64(),
    "float32": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "string": pa.string(),
    "bool": pa.bool_(),
}
