"""Online reads of an aggregate view from members written by hand (the read side alone): the change
point a lookup reads at t, the empty window's values and statuses, both decoders (row by row and
numpy), a plain and an aggregate view in one round trip, a member of another definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
import redis

from granero import Entity, FeatureView, Field, FileSource
from granero.aggregation.spec import aggregation_spec
from granero.definitions import compile_definitions
from granero.online.aggregate_encoding import encode_members, layout_of
from granero.online.encoding import encode_entity_key, to_micros
from granero.online.lookup import ROW_BY_ROW_BELOW, Status, lookup
from granero.online.sync import write_rows
from tests.online.conftest import request

pytestmark = pytest.mark.redis

HOUR = 3600 * 1_000_000
T0 = datetime(2026, 1, 8, tzinfo=UTC)
"""A request time on an hour boundary: tile 493,656 (hop 1h)."""


def define():
    driver = Entity(join_keys={"driver_id": "int64"})
    source = FileSource(path="data/none", timestamp_field="ts")
    trips = FeatureView(
        entities=[driver], source=source, hop="1h",
        features=[Field(name="fare", dtype="float64"), Field(name="tier", dtype="string")],
        aggregations=[
            {"column": "driver_id", "function": "count", "window": "2h", "name": "trips_2h"},
            {"column": "fare", "function": "sum", "window": "2h"},
            {"column": "fare", "function": "mean", "window": "1d"},
            {"column": "fare", "function": "sum", "window": "1d"},
            {"column": "tier", "function": "last", "window": "1d"},
        ],
    )
    plain = FeatureView(entities=[driver], source=source, ttl="1d",
                        features=[Field(name="rating", dtype="float32")])
    return compile_definitions([("driver", driver), ("trips", trips), ("plain", plain)])


DEFS = define()
VIEW = DEFS.feature_views["trips"]
LAYOUT = layout_of(aggregation_spec(DEFS, VIEW))
EVERY = [f"trips:{name}" for name in VIEW.output_names]
ONE = {"driver_id:count:2": [2], "fare:sum:2": [3.0], "fare:mean:24": [1.5], "fare:sum:24": [5.0],
       "tier:last:24": ["x"]}


def put_members(client: redis.Redis, store, driver: int, points: list[int], slots: dict[str, list]) -> None:
    """ZADD one member per change point (tile index; the first scored -inf) whose slot values are
    ``slots`` (by ``column:function:window in hours``)."""
    values = []
    for pair, window in LAYOUT.slots:
        column, function, dtype = LAYOUT.pairs[pair]
        values.append(pa.array(slots[f"{column}:{function}:{LAYOUT.windows[window] // HOUR}"],
                               type=pa.int64() if dtype == "int64" else None))
    stamp = (np.full(len(points), points[0] * HOUR), np.full(len(points), -(2**63)))
    members = encode_members(LAYOUT, np.asarray(points), stamp, values)
    key = store._prefix("trips") + encode_entity_key(["int64"], [driver])
    client.zadd(key, {m: float("-inf") if i == 0 else t for i, (m, t) in enumerate(zip(members, points, strict=True))})


def test_a_lookup_reads_the_last_change_point_at_or_before_its_tile(store, online_url):
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR  # points at head (the newest event's tile), head+2 and head+24
    put_members(client, store, 1, [head, head + 2, head + 24], {
        "driver_id:count:2": [4, 1, 0], "fare:sum:2": [40.0, 10.0, 0.0], "fare:mean:24": [10.0, 10.0, None],
        "fare:sum:24": [90.0, 90.0, 0.0], "tier:last:24": ["gold", None, None],
    })
    at = T0 + timedelta(minutes=30)
    result = lookup(store, request(DEFS, *EVERY), [{"driver_id": 1}, {"driver_id": 2}], at)
    assert result.to_dict() == {
        "trips__trips_2h": [4, 0], "trips__fare_sum_2h": [40.0, 0.0], "trips__fare_mean_1d": [10.0, None],
        "trips__fare_sum_1d": [90.0, 0.0], "trips__tier_last_1d": ["gold", None],
    }
    statuses = [[v.status for v in row] for row in result.rows]
    assert statuses[0] == [Status.PRESENT] * 5
    assert statuses[1] == [Status.PRESENT, Status.PRESENT, Status.NULL_VALUE, Status.PRESENT, Status.NULL_VALUE]
    assert {v.event_timestamp for row in result.rows for v in row} == {at}  # evaluated at the request time
    expected = {  # microseconds after T0 -> (2h: count, sum; 1d: sum, last)
        -1: (4, 40.0, 90.0, "gold"),  # before the first point (a clock behind the writer's): the first
        0: (4, 40.0, 90.0, "gold"),
        2 * HOUR - 1: (4, 40.0, 90.0, "gold"),  # the last microsecond before a point
        2 * HOUR: (1, 10.0, 90.0, None),  # exactly on a point
        24 * HOUR - 1: (1, 10.0, 90.0, None),
        24 * HOUR: (0, 0.0, 0.0, None),  # the last point: every window empty
        400 * HOUR: (0, 0.0, 0.0, None),
    }
    for micros, values in expected.items():
        later = lookup(store, request(DEFS, *EVERY), [{"driver_id": 1}], T0 + timedelta(microseconds=micros))
        got = later.to_dict()
        assert (got["trips__trips_2h"][0], got["trips__fare_sum_2h"][0], got["trips__fare_sum_1d"][0],
                got["trips__tier_last_1d"][0]) == values, micros


def _random_slots(rng, count: int) -> dict[str, list]:
    return {"driver_id:count:2": rng.integers(0, 9, count).tolist(), "fare:sum:2": rng.normal(size=count).tolist(),
            "fare:mean:24": [None, *rng.normal(size=count - 1).tolist()],
            "fare:sum:24": rng.normal(size=count).tolist(), "tier:last:24": ["a", None, "bc"][:count]}


def test_numpy_decoding_equals_row_by_row(store, online_url):
    """Past ROW_BY_ROW_BELOW entities the members decode with numpy: the same answer."""
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR
    rng = np.random.default_rng(3)
    for driver in range(0, 40, 2):  # odd drivers have no events
        points = sorted(rng.choice(np.arange(head - 3, head + 3), 3, replace=False).tolist())
        put_members(client, store, driver, points, _random_slots(rng, 3))
    rows = [{"driver_id": d} for d in range(40)]
    for minutes in (0, 59, 60, 61, 180):
        at = T0 + timedelta(minutes=minutes)
        together = lookup(store, request(DEFS, *EVERY), rows, at)
        assert len(rows) >= ROW_BY_ROW_BELOW
        one_by_one = [lookup(store, request(DEFS, *EVERY), [row], at) for row in rows]
        for name, column in together.to_dict().items():
            assert column == [r.to_dict()[name][0] for r in one_by_one], (name, minutes)
        assert together.rows == [r.rows[0] for r in one_by_one]


def test_plain_and_aggregate_views_in_one_round_trip(replay_store, online_url):
    store = replay_store
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR
    put_members(client, store, 1, [head], ONE)
    write_rows(store, DEFS.feature_views["plain"], {"driver_id": "int64"},
               [{"driver_id": 1, "event_timestamp": T0, "rating": 4.5}])
    calls = []
    read = store.read
    store.read = lambda *args: calls.append(args) or read(*args)
    result = lookup(store, request(DEFS, "plain:rating", "trips:trips_2h"), [{"driver_id": 1}] * 20, T0)
    assert len(calls) == 1
    assert result.to_dict() == {"plain__rating": [4.5] * 20, "trips__trips_2h": [2] * 20}


def test_a_member_of_another_definition_reads_as_not_found(store, online_url):
    """Members written under another hop/window/pairs are never served as values."""
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR
    put_members(client, store, 1, [head], ONE)
    key = store._prefix("trips") + encode_entity_key(["int64"], [1])
    (member,) = client.zrange(key, 0, -1)
    client.zadd(key, {member[:25] + b"\0\0\0\0" + member[29:]: "-inf"})  # another schema id
    client.zrem(key, member)
    for rows in ([{"driver_id": 1}], [{"driver_id": 1}] * 20):
        result = lookup(store, request(DEFS, *EVERY), rows, T0)
        assert {v.status for row in result.rows for v in row} == {Status.NOT_FOUND}
        assert set(result.to_dict()["trips__trips_2h"]) == {None}


def test_a_key_holding_no_sorted_set_reads_as_not_found(store, online_url):
    """A row left by the view's plain definition (forced apply, not yet synced): that entity is
    NOT_FOUND, the others are served, the request does not fail (WRONGTYPE)."""
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR
    put_members(client, store, 1, [head], ONE)
    client.set(store._prefix("trips") + encode_entity_key(["int64"], [2]), b"\x01" + bytes(40))
    for rows in ([{"driver_id": 1}, {"driver_id": 2}], [{"driver_id": 1}, {"driver_id": 2}] * 10):
        result = lookup(store, request(DEFS, "trips:trips_2h"), rows, T0)
        assert result.to_dict()["trips__trips_2h"][:2] == [2, None]
        assert [row[0].status for row in result.rows[:2]] == [Status.PRESENT, Status.NOT_FOUND]


def test_an_aggregate_views_outputs_are_built_once_per_view():
    """Every in-process lookup resolves its refs through ``output_fields``: built once per view
    (12 pydantic fields cost more than the Redis read of one entity), never shared by a copy
    of the view, and the caller's list is its own."""
    first, second = VIEW.output_fields, VIEW.output_fields
    assert first == second and all(a is b for a, b in zip(first, second, strict=True))
    first.pop()
    assert len(VIEW.output_fields) == len(second)
    fewer = VIEW.model_copy(update={"aggregations": VIEW.aggregations[:2]})
    assert [f.name for f in fewer.output_fields] == ["trips_2h", "fare_sum_2h"]
    assert [f.name for f in VIEW.output_fields] == VIEW.output_names and len(VIEW.output_names) == 5
