"""The consistency proof, in process: the online value of every aggregate at t equals the training
value (``aggregate_as_of``) of an entity row at t, exactly (floats bit for bit), on random events
over many seeds, read from a real Redis through ``lookup``.

Events come from ``tests.aggregation.random_events`` (ties, events on hop and window boundaries,
nulls, NaN and ±0.0, composite int+string keys with near-collisions, histories before 1970, late
created times); every function over every dtype it takes, 2 windows. Request times t start at
the newest event (materialization never stores an event later than its run, so a lookup at
t >= the newest event is the served case) and sweep every tail crossing of every window: each
tile boundary + W, one microsecond before it, the last microsecond of the hop, past the span.
Then late events arrive (event times inside the stored span, created later) and the entities are
written again: the values equal the training values over all events.
"""

from __future__ import annotations

import random
import struct
from datetime import timedelta

import pyarrow as pa
import pytest

from granero import Entity, FeatureView, Field, FileSource
from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.spec import aggregation_spec
from granero.definitions import compile_definitions
from granero.online.encoding import from_micros, to_micros
from granero.online.lookup import Status, lookup
from tests.aggregation.random_events import COLUMNS, KEYS, events_table, random_case
from tests.online.aggregate_members import write_events
from tests.online.conftest import request

pytestmark = pytest.mark.redis

SEEDS = range(12)


def define(case):
    """A view computing the case's aggregates (every function over every dtype it takes)."""
    entity = Entity(join_keys=KEYS)
    view = FeatureView(
        entities=[entity], source=FileSource(path="data/none", timestamp_field="ts"),
        features=[Field(name=c, dtype=d) for c, d in COLUMNS.items()],
        aggregations=[{"column": a.column, "function": a.function, "window": timedelta(microseconds=a.window),
                       "name": a.output} for a in case.aggregates],
        hop=timedelta(microseconds=case.hop),
    )
    return compile_definitions([("entity", entity), ("events", view)])


def request_times(case, events: list[dict]) -> list[int]:
    """From the newest event on: every tail crossing of every window, a microsecond before it,
    the hop's last microsecond, and a time past the span (every window empty)."""
    newest = max(e["ts"] for e in events if e["ts"] is not None)
    starts = {e["ts"] - e["ts"] % case.hop for e in events if e["ts"] is not None}
    times = {newest, newest + 1, newest - newest % case.hop + case.hop - 1, newest + max(case.windows) + 2 * case.hop}
    for start in starts:
        for window in case.windows:
            times |= {start + window + d for d in (-1, 0, case.hop - 1, case.hop)}
    return sorted(t for t in times if t >= newest)


def bits(value):
    """A float's exact bits (NaN and -0.0 included), a timestamp's micros, else the value."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    return to_micros(value) if hasattr(value, "tzinfo") else value


def entities(events: list[dict]) -> list[dict]:
    """Every key with events (no null part), and one key that never had any (9 keys at most:
    asked twice over as well, so both decoders run, row by row and numpy)."""
    keys = {(e["a"], e["s"]) for e in events if e["a"] is not None and e["s"] is not None}
    return [{"a": a, "s": s} for a, s in sorted(keys)] + [{"a": 99, "s": "never"}]


def training(rows: list[dict], t: int, events: pa.Table, spec) -> pa.Table:
    asked = pa.table({"a": pa.array([r["a"] for r in rows], pa.int64()),
                      "s": pa.array([r["s"] for r in rows], pa.string()),
                      "event_timestamp": pa.array([from_micros(t)] * len(rows), pa.timestamp("us", tz="UTC"))})
    return aggregate_as_of(asked, events, spec)


def assert_online_equals_training(store, defs, rows, times, events: pa.Table) -> int:
    """Every aggregate of every row at every time; returns how many values were compared."""
    view = defs.feature_views["events"]
    spec = aggregation_spec(defs, view)
    compared = 0
    for t, asked in ((t, asked) for t in times for asked in (rows, rows * 2)):  # < and >= ROW_BY_ROW_BELOW
        online = lookup(store, request(defs, "events:*"), asked, from_micros(t))
        offline = training(asked, t, events, spec)
        for name, served in zip(view.output_names, online.values, strict=True):
            wanted = offline[name].to_pylist()
            assert [bits(v) for v in served] == [bits(v) for v in wanted], (name, t, asked)
        for row in online.rows:
            assert {v.status for v in row} <= {Status.PRESENT, Status.NULL_VALUE}
            assert all((v.status is Status.NULL_VALUE) == (v.value is None) for v in row)
        compared += len(asked) * len(view.output_names)
    return compared


@pytest.mark.parametrize("seed", SEEDS)
def test_online_at_t_equals_training_at_t(replay_store, seed):
    case = random_case(seed, n_events=80, n_entities=0)
    defs = define(case)
    view = defs.feature_views["events"]
    events = [e for e in case.events]
    random.Random(seed).shuffle(events)
    write_events(replay_store, defs, view, events_table(events))
    rows = entities(events)
    assert_online_equals_training(replay_store, defs, rows, request_times(case, events), events_table(events))
    # Late events: inside the stored span, created long after the others; the entities are
    # written again from all their events (as sync recomputes them).
    rng = random.Random(seed + 1000)
    newest = max(e["ts"] for e in events if e["ts"] is not None)
    late = [{**rng.choice(events), "ts": newest - rng.randrange(max(case.windows)), "created": newest + 10**9}
            for _ in range(8)]
    write_events(replay_store, defs, view, events_table(events + late))
    assert_online_equals_training(replay_store, defs, rows, request_times(case, events + late),
                                  events_table(events + late))
