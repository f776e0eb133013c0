"""Online reads of an aggregate view from members written by hand (the read side alone): the member
a window reads at t, the empty window's values and statuses, both decoders (row by row and numpy),
a plain and an aggregate view in one round trip, a member of another definition."""

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


def put_members(client: redis.Redis, store, driver: int, tiles: list[int], pairs: dict[str, list]) -> None:
    """ZADD one member per tile whose pair values are ``pairs`` (by ``column:function``)."""
    values = [pa.array(pairs[f"{c}:{f}"], type=pa.from_numpy_dtype(np.int64) if d == "int64" else None)
              for c, f, d in LAYOUT.pairs]
    stamp = (np.full(len(tiles), tiles[-1] * HOUR), np.full(len(tiles), -(2**63)))
    members = encode_members(LAYOUT, np.asarray(tiles), stamp, values)
    key = store._prefix("trips") + encode_entity_key(["int64"], [driver])
    client.zadd(key, {m: t for m, t in zip(members, tiles, strict=True)})


def test_each_window_reads_the_first_member_at_or_after_its_tail(store, online_url):
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR  # members at head-5 (only the 1d window reaches it), head-1, head
    put_members(client, store, 1, [head - 5, head - 1, head], {
        "driver_id:count": [9, 4, 1], "fare:sum": [90.0, 40.0, 10.0], "fare:mean": [10.0, 10.0, 10.0],
        "tier:last": ["gold", "gold", None],
    })
    at = T0 + timedelta(minutes=30)  # 2h window: tail = head - 2 -> member head-1
    result = lookup(store, request(DEFS, *EVERY), [{"driver_id": 1}, {"driver_id": 2}], at)
    assert result.to_dict() == {
        "trips__trips_2h": [4, 0], "trips__fare_sum_2h": [40.0, 0.0], "trips__fare_mean_1d": [10.0, None],
        "trips__fare_sum_1d": [90.0, 0.0], "trips__tier_last_1d": ["gold", None],
    }
    statuses = [[v.status for v in row] for row in result.rows]
    assert statuses[0] == [Status.PRESENT] * 5
    assert statuses[1] == [Status.PRESENT, Status.PRESENT, Status.NULL_VALUE, Status.PRESENT, Status.NULL_VALUE]
    assert {v.event_timestamp for row in result.rows for v in row} == {at}  # evaluated at the request time
    expected = {  # hours after T0 -> (2h window: count, sum; 1d window: sum, last)
        1: (4, 40.0, 90.0, "gold"),  # 2h tail = head-1, exactly a member's tile
        2: (1, 10.0, 90.0, "gold"),  # 2h tail = head; 1d tail = head-22 -> member head-5
        3: (0, 0.0, 90.0, "gold"),  # 2h tail = head+1: no member, the empty window
        20: (0, 0.0, 40.0, "gold"),  # 1d tail = head-4 -> member head-1
        24: (0, 0.0, 10.0, None),  # 1d tail = head -> the newest member holds a null last
        25: (0, 0.0, 0.0, None),
    }
    for hours, values in expected.items():
        for minutes in (0, 59):  # the tail holds still within a hop
            at = T0 + timedelta(hours=hours, minutes=minutes)
            later = lookup(store, request(DEFS, *EVERY), [{"driver_id": 1}], at)
            got = later.to_dict()
            assert (got["trips__trips_2h"][0], got["trips__fare_sum_2h"][0], got["trips__fare_sum_1d"][0],
                    got["trips__tier_last_1d"][0]) == values, (hours, minutes)


def test_numpy_decoding_equals_row_by_row(store, online_url):
    """Past ROW_BY_ROW_BELOW entities the members decode with numpy: the same answer."""
    client = redis.Redis.from_url(online_url)
    head = to_micros(T0) // HOUR
    rng = np.random.default_rng(3)
    for driver in range(0, 40, 2):  # odd drivers have no events
        tiles = sorted(rng.choice(np.arange(head - 30, head + 1), 3, replace=False).tolist())
        put_members(client, store, driver, tiles, {
            "driver_id:count": rng.integers(1, 9, 3).tolist(), "fare:sum": rng.normal(size=3).tolist(),
            "fare:mean": [None, *rng.normal(size=2).tolist()], "tier:last": ["a", None, "bc"],
        })
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
    put_members(client, store, 1, [head], {"driver_id:count": [2], "fare:sum": [3.0], "fare:mean": [1.5],
                                           "tier:last": ["x"]})
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
    put_members(client, store, 1, [head], {"driver_id:count": [2], "fare:sum": [3.0], "fare:mean": [1.5],
                                           "tier:last": ["x"]})
    key = store._prefix("trips") + encode_entity_key(["int64"], [1])
    (member,) = client.zrange(key, 0, -1)
    client.zadd(key, {member[:25] + b"\0\0\0\0" + member[29:]: head})  # another schema id
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
    put_members(client, store, 1, [head], {"driver_id:count": [2], "fare:sum": [3.0], "fare:mean": [1.5],
                                           "tier:last": ["x"]})
    client.set(store._prefix("trips") + encode_entity_key(["int64"], [2]), b"\x01" + bytes(40))
    for rows in ([{"driver_id": 1}, {"driver_id": 2}], [{"driver_id": 1}, {"driver_id": 2}] * 10):
        result = lookup(store, request(DEFS, "trips:trips_2h"), rows, T0)
        assert result.to_dict()["trips__trips_2h"][:2] == [2, None]
        assert [row[0].status for row in result.rows[:2]] == [Status.PRESENT, Status.NOT_FOUND]
