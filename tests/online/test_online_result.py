"""lookup()'s column-backed OnlineResult answers what the row path (read_views + ViewReader.values)
answers, value by value and type by type, for random data of every dtype: nulls, list elements,
float and timestamp edges, the ttl edge, rows of an older schema, missing and duplicate entities,
several views. ``to_dict`` builds no FeatureValue; ``rows`` does, on first use. Bad requests fail
with the row path's message (the first bad row's)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import RepoDefinitions, compile_definitions
from granero.errors import InvalidRequest
from granero.online.lookup import OnlineResult, lookup
from granero.online.sync import write_rows
from granero.types import SCALARS
from tests.online.conftest import NOW, request
from tests.online.test_lookup_columns import rows_lookup

pytestmark = pytest.mark.redis

DTYPES = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EDGES: dict[str, list[Any]] = {
    "int32": [-(2**31), 2**31 - 1, 0],
    "int64": [-(2**63), 2**63 - 1, 0],
    "float32": [0.0, -0.0, 0.1, float("inf"), float("-inf"), float("nan")],
    "float64": [-0.0, 1 / 3, 5e-324, float("inf"), float("nan")],
    "bool": [True, False],
    "string": ["", "héllo", "🚕", "a\x00b"],
    "bytes": [b"", b"\x00\xff", bytes(range(256))],
    "timestamp": [EPOCH, EPOCH - timedelta(microseconds=1), datetime(1, 1, 1, tzinfo=UTC),
                  datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
}
ENTITY_ROWS = (1, 15, 16, 60)
"""Sizes on both sides of ROW_BY_ROW_BELOW (decoded row by row, or by numpy)."""


def define(grown: bool = False) -> RepoDefinitions:
    """``wide`` (every dtype, 1h), ``daily`` (2d) on drivers and ``routes`` (1d) on a composite
    key; ``grown``: wide with one more feature, the schema its older rows were written under."""
    driver = Entity(join_keys={"driver_id": "int64"})
    route = Entity(join_keys={"zone": "int32", "vehicle": "string"})
    source = FileSource(path="data/none", timestamp_field="ts")
    extra = [Field(name="added", dtype="int64")] if grown else []
    views = {
        "wide": ([driver], "1h", [*DTYPES, *DTYPES[:3]]),
        "daily": ([driver], "2d", ["bool", "float32", "list<timestamp>"]),
        "routes": ([route], "1d", ["float64", "timestamp", "string"]),
    }
    return compile_definitions([("driver", driver), ("route", route), *(
        (name, FeatureView(entities=entities, source=source, ttl=ttl, features=[
            *(Field(name=f"v{i}", dtype=d) for i, d in enumerate(dtypes)), *extra]))
        for name, (entities, ttl, dtypes) in views.items())])


DEFS, GROWN = define(), define(grown=True)


def scalar(rng: random.Random, dtype: str) -> Any:
    if rng.random() < 0.4:
        return rng.choice(EDGES[dtype])
    if dtype in ("int32", "int64"):
        bits = 31 if dtype == "int32" else 63
        return rng.randint(-(2**bits), 2**bits - 1)
    return {
        "float32": lambda: rng.uniform(-1e6, 1e6),
        "float64": lambda: rng.gauss(0, 1e9),
        "bool": lambda: rng.random() < 0.5,
        "string": lambda: "".join(rng.choice("abé🚕 ") for _ in range(rng.randint(0, 5))),
        "bytes": lambda: rng.randbytes(rng.randint(0, 5)),
        "timestamp": lambda: EPOCH + timedelta(microseconds=rng.randint(-(10**16), 10**17)),
    }[dtype]()


def value(rng: random.Random, dtype: str) -> Any:
    """A random value of ``dtype``: None sometimes, lists with null elements sometimes."""
    if rng.random() < 0.15:
        return None
    if dtype.startswith("list<"):
        element = dtype[5:-1]
        return [None if rng.random() < 0.2 else scalar(rng, element)
                for _ in range(rng.randint(0, 3))]
    return scalar(rng, dtype)


def event_time(rng: random.Random, ttl: timedelta) -> datetime:
    """Fresh, stale, or on either side of the ttl's inclusive end (the epoch: stale, time 0)."""
    edges = [NOW, NOW - ttl, NOW - ttl - timedelta(microseconds=1), EPOCH]
    if rng.random() < 0.4:
        return rng.choice(edges)
    return NOW - timedelta(microseconds=rng.randint(0, 2 * ttl // timedelta(microseconds=1)))


DRIVERS = range(40)
ROUTES = [(zone, vehicle) for zone in (-(2**31), 0, 7, 2**31 - 1) for vehicle in ("", "car", "é")]


def fill(store, rng: random.Random) -> None:
    """Each view's entities: a random half written, some of wide's under its grown schema (read
    back as NOT_FOUND), the rest never written."""
    for name in DEFS.feature_views:
        view, grown = DEFS.feature_views[name], GROWN.feature_views[name]
        keys = ([{"driver_id": d} for d in DRIVERS] if name != "routes"
                else [{"zone": z, "vehicle": v} for z, v in ROUTES])
        written = [key for key in keys if rng.random() < 0.6]
        older = [key for key in written if name == "wide" and rng.random() < 0.2]
        for schema, entities in ((view, [k for k in written if k not in older]), (grown, older)):
            rows = [{**key, "event_timestamp": event_time(rng, view.ttl),
                     **{f.name: value(rng, f.dtype) for f in schema.features}} for key in entities]
            write_rows(store, schema, DEFS.join_keys(view), rows)


def entity_rows(rng: random.Random, count: int) -> list[Any]:
    """Drivers and routes, known or not, repeated; a numpy int key, an unused key or a read-only
    mapping now and then."""
    rows: list[Any] = []
    for _ in range(count):
        zone, vehicle = rng.choice([*ROUTES, (3, "bike")])
        row: dict[str, Any] = {"driver_id": rng.choice([*DRIVERS, -1, 2**63 - 1]),
                               "zone": zone, "vehicle": vehicle}
        if rng.random() < 0.1:
            row["driver_id"] = np.int64(row["driver_id"])
        if rng.random() < 0.1:
            row["unused"] = object()
        rows.append(MappingProxyType(row) if rng.random() < 0.05 else row)
    return rows


def refs(rng: random.Random) -> list[str]:
    """A random subset of every view's features, in random order (views too)."""
    picked = [f"{name}:{f.name}" for name, view in DEFS.feature_views.items()
              for f in view.features if rng.random() < 0.7]
    rng.shuffle(picked)
    return picked or ["wide:*"]


@pytest.mark.parametrize("count", ENTITY_ROWS)
@pytest.mark.parametrize("seed", range(3))
def test_rows_and_to_dict_answer_what_the_row_path_answers(replay_store, seed, count):
    rng = random.Random(seed * 100 + count)
    fill(replay_store, rng)
    views, rows = request(DEFS, *refs(rng)), entity_rows(rng, count)
    result = lookup(replay_store, views, rows, NOW)
    expected = rows_lookup(replay_store, views, rows, NOW)

    as_dict = result.to_dict()
    assert "rows" not in vars(result)  # to_dict built no FeatureValue
    names = [name for view in views for name in view.column_names()]
    assert list(as_dict) == result.feature_names == names
    # repr: exact types (1 vs 1.0 vs True, numpy scalars), NaN, -0.0 and time zones compared too
    assert repr(as_dict) == repr({name: [row[i].value for row in expected]
                                  for i, name in enumerate(names)})
    assert repr(result.rows) == repr(expected)
    assert result.rows is result.rows  # built once
    as_dict[names[0]].append("changed")
    assert result.to_dict()[names[0]] == [row[0].value for row in result.rows]
    assert OnlineResult.from_rows(names, result.rows) == result


def test_the_data_covers_every_status_and_both_ttl_edges(replay_store):
    """What the random test relies on, for one seed and size: each case really occurs."""
    rng = random.Random(ENTITY_ROWS[-1])
    fill(replay_store, rng)
    views = request(DEFS, *refs(rng))
    result = lookup(replay_store, views, entity_rows(rng, ENTITY_ROWS[-1]), NOW)
    seen = {(v.status, v.event_timestamp) for row in result.rows for v in row}
    assert {status for status, _ in seen} == {"PRESENT", "NULL_VALUE", "NOT_FOUND",
                                              "OUTSIDE_MAX_AGE"}
    # a row written at exactly the epoch reads with no event time: 0 means none on every path, as
    # on the wire (serving.proto), where on-demand outputs of request values only carry 0
    assert ("OUTSIDE_MAX_AGE", None) in seen and ("PRESENT", NOW - timedelta(hours=1)) in seen


def test_an_empty_request_answers_empty_columns(replay_store):
    result = lookup(replay_store, request(DEFS, "wide:v0", "routes:*"), [], NOW)
    assert result.to_dict() == {"wide__v0": [], "routes__v0": [], "routes__v1": [],
                                "routes__v2": []}
    assert result.rows == [] and OnlineResult.from_rows(result.feature_names, []) == result


GOOD = {"driver_id": 1, "zone": 1, "vehicle": "car"}


@pytest.mark.parametrize(("rows", "message"), [
    ([GOOD, {**GOOD, "driver_id": "2"}, {**GOOD, "zone": 2**31}],
     "entity row 1: join key 'driver_id' of view 'wide' must be int64, got str '2'"),
    ([{**GOOD, "zone": "1"}, {**GOOD, "driver_id": None}],
     "entity row 0: join key 'zone' of view 'routes' must be int32, got str '1'"),
    ([{"zone": 1, "vehicle": "car"}, [1]], "entity row 0: missing join key 'driver_id' of view "
     "'wide'"),
    ([GOOD, [1], {"zone": 1}], "entity row 1: must map join key names to values, got list"),
])
def test_the_first_bad_row_is_named_as_the_row_path_names_it(store, rows, message):
    """Rows, then views, then keys: not the first bad key column."""
    views = request(DEFS, "wide:v0", "routes:v0")
    for ask in (lookup, rows_lookup):
        with pytest.raises(InvalidRequest) as caught:
            ask(store, views, rows, NOW)
        assert str(caught.value) == message


FAULTS = [("driver_id", "7"), ("driver_id", True), ("driver_id", None), ("driver_id", 1.5),
          ("driver_id", 2**63), ("zone", 2**31), ("vehicle", b"car"), ("zone", None)]


@pytest.mark.parametrize("seed", range(20))
def test_random_bad_requests_fail_with_the_row_paths_message(store, seed):
    """One to three faults in random rows, each on a join key of the requested views."""
    rng = random.Random(seed)
    views = request(DEFS, *rng.sample(["wide:v1", "routes:v0", "daily:v0"], 2))
    keys = sorted({key for view in views for key in view.join_keys})
    rows: list[Any] = [dict(GOOD, driver_id=i) for i in range(rng.randint(1, 20))]
    for index in rng.choices(range(len(rows)), k=rng.randint(1, 3)):
        if not isinstance(rows[index], dict):
            continue
        if rng.random() < 0.15:
            rows[index] = [1]
        elif rng.random() < 0.2:
            missing = rng.choice(keys)
            rows[index] = {k: v for k, v in rows[index].items() if k != missing}
        else:
            key, bad = rng.choice([(k, v) for k, v in FAULTS if k in keys])
            rows[index] = {**rows[index], key: bad}
    with pytest.raises(InvalidRequest) as expected:
        rows_lookup(store, views, rows, NOW)
    with pytest.raises(InvalidRequest) as caught:
        lookup(store, views, rows, NOW)
    assert str(caught.value) == str(expected.value)
