"""Writing aggregate views' entities to a real Redis (standalone and a 3-node Cluster): whole,
idempotent rewrites, the write-if-newer stamp, expiry, definition changes, large entities.

Values read back by the lookup's rule (the last member scored <= t // hop) are compared with the
in-process engine at t, so the bytes in Redis are the training values.
"""

from __future__ import annotations

import random
import time
from unittest.mock import patch

import pyarrow as pa
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.aggregation.engine import Aggregate, AggregationSpec, aggregate_as_of
from granero.online import aggregate_sync
from granero.online.aggregate_encoding import decode_members, empty_values, layout_of, member_stamp
from granero.online.aggregate_sync import AggregateWriter
from granero.online.aggregate_writes import AggregateEntity
from granero.online.encoding import batch_values, encode_entity_key
from granero.online.redis import RedisSettings, RedisStore
from tests.online.test_cluster import cluster_ports  # noqa: F401 (the module's cluster fixture)

pytestmark = pytest.mark.redis

MINUTE = 60_000_000
HOUR = 60 * MINUTE
NOW_US = int(time.time() // 3600 * 3600) * 1_000_000  # hour-aligned, recent: keys do not expire


def spec_of(hop: int = 10 * MINUTE) -> AggregationSpec:
    aggregates = [
        Aggregate(f"fare_{f}_{w}", "fare", f, w * HOUR, "float64")
        for f in ("sum", "mean", "last", "max") for w in (1, 3)
    ]
    count = Aggregate("n", "driver_id", "count", HOUR, "int64")
    return AggregationSpec({"driver_id": "int64"}, hop, [*aggregates, count])


SPEC = spec_of()


def events(rows: list[tuple]) -> pa.Table:
    """(driver, event us, created us or None, fare or None) rows as an offline table's events."""
    stamp = pa.timestamp("us", tz="UTC")
    return pa.table({
        "driver_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_timestamp": pa.array([r[1] for r in rows], pa.int64()).cast(stamp),
        "created_timestamp": pa.array([r[2] for r in rows], pa.int64()).cast(stamp),
        "fare": pa.array([r[3] for r in rows], pa.float64()),
    })


def random_rows(seed: int, drivers: int = 20, count: int = 300) -> list[tuple]:
    rng = random.Random(seed)
    return [
        (rng.randrange(drivers), NOW_US - rng.randrange(5 * HOUR), rng.choice([None, NOW_US]),
         rng.choice([None, 0.1, 1e10, -2.5, rng.random()]))
        for _ in range(count)
    ]


def dump(client: redis.Redis, project: str) -> dict:
    """Every key of the project: its members with scores, and its expiry (ms)."""
    return {
        key: (client.zrange(key, 0, -1, withscores=True), client.pexpiretime(key))
        for key in sorted(client.scan_iter(match=f"{project}:*".encode()))
    }


def writer(store: RedisStore, spec: AggregationSpec = SPEC) -> AggregateWriter:
    return AggregateWriter(store.settings, store.project, "trips", spec)


def key_of(store: RedisStore, driver: int) -> bytes:
    return f"{store.project}:trips:".encode() + encode_entity_key(["int64"], [driver])


def read_at(client, store: RedisStore, drivers: list[int], t: int) -> list:
    """Per driver, the member the lookup reads at t (None when none)."""
    tile = t // SPEC.hop
    return [(client.zrange(key_of(store, d), tile, "-inf", desc=True, byscore=True, offset=0, num=1) or [None])[0]
            for d in drivers]


def test_values_read_back_by_the_rule_equal_the_engine(replay_store, online_url):
    rows = random_rows(1)
    client = redis.Redis.from_url(online_url)
    assert writer(replay_store).write(replay_store, events(rows)) == len({r[0] for r in rows})
    layout = layout_of(SPEC)
    drivers = sorted({r[0] for r in rows})
    for t in (NOW_US, NOW_US + 1, NOW_US + 20 * MINUTE, NOW_US + 2 * HOUR, NOW_US + 4 * HOUR):
        times = pa.array([t] * len(drivers), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        asked = pa.table({"driver_id": pa.array(drivers, pa.int64()), "event_timestamp": times})
        expected = aggregate_as_of(asked, events(rows), SPEC)
        members = read_at(client, replay_store, drivers, t)
        batch = decode_members(layout, members)
        for aggregate in SPEC.aggregates:
            index = layout.slot_index(aggregate.column, aggregate.function, aggregate.window)
            (column,) = batch_values(layout.codec, batch, (index,), batch.nulls[:, [index]])
            empty = empty_values(layout)[layout.pair_index(aggregate.column, aggregate.function)]
            got = [empty if m is None else None if batch.nulls[i, index] else column[i]
                   for i, m in enumerate(members)]
            assert got == expected[aggregate.output].to_pylist(), (t, aggregate.output)


def test_rewriting_the_same_events_is_byte_identical_and_never_counts_twice(replay_store, online_url):
    rows = random_rows(2)
    client = redis.Redis.from_url(online_url)
    writer(replay_store).write(replay_store, events(rows))
    first = dump(client, replay_store.project)
    shuffled = random.Random(3).sample(rows, len(rows))
    writer(replay_store).write(replay_store, events(shuffled))
    assert dump(client, replay_store.project) == first
    writer(replay_store).write(replay_store, events(shuffled[: len(rows) // 2] + shuffled))  # half of them twice:
    assert dump(client, replay_store.project) != first  # the values follow the events given...
    writer(replay_store).write(replay_store, events(shuffled))
    assert dump(client, replay_store.project) == first  # ...and a rewrite never adds to what is stored


def test_an_older_computation_never_overwrites_a_newer_one(replay_store, online_url):
    client = redis.Redis.from_url(online_url)
    base = [(7, NOW_US - HOUR, None, 1.0), (7, NOW_US - 30 * MINUTE, 5, 2.0)]
    newer = [*base, (7, NOW_US - MINUTE, 5, 4.0)]
    assert writer(replay_store).write(replay_store, events(newer)) == 1
    stored = dump(client, replay_store.project)
    assert writer(replay_store).write(replay_store, events(base)) == 0  # computed before the newest event
    assert dump(client, replay_store.project) == stored
    late = [*newer, (7, NOW_US - 2 * HOUR, 9, 8.0)]  # an older event, created later: newer stamp
    assert writer(replay_store).write(replay_store, events(late)) == 1
    assert writer(replay_store).write(replay_store, events(newer)) == 0  # a computation that missed it
    corrected = [(d, ts, c, -v) for d, ts, c, v in late]  # equal stamp: a corrected re-run lands
    assert writer(replay_store).write(replay_store, events(corrected)) == 1
    (member,) = read_at(client, replay_store, [7], NOW_US)
    assert member_stamp(member) == (NOW_US - MINUTE, 9)
    layout = layout_of(SPEC)
    batch = decode_members(layout, [member])
    (total,) = batch_values(layout.codec, batch, (layout.slot_index("fare", "sum", 3 * HOUR),), batch.nulls[:, :1])
    assert total == [-15.0]


def test_tiles_that_left_the_span_are_dropped_and_keys_expire_after_it(store, replay_store, online_url):
    client = redis.Redis.from_url(online_url)
    old = [(3, NOW_US - 20 * HOUR + k * MINUTE, None, 1.0) for k in range(0, 120, 7)]
    writer(replay_store).write(replay_store, events(old))  # kept: it would have expired
    # 12 non-empty 10-minute tiles j = 0..11 (newest 11): the first point, the 1h crossings
    # j + 1 + 6 after tile 11 (j >= 5: 7 points), the 3h crossings j + 1 + 18 (all 12): 20 points
    assert client.zcard(key_of(store, 3)) == 20
    recent = [*old, (3, NOW_US - 15 * MINUTE, None, 2.0)]
    writer(store).write(store, events(recent))
    members = client.zrange(key_of(store, 3), 0, -1, withscores=True)
    span = 3 * HOUR + SPEC.hop
    newest = (NOW_US - 15 * MINUTE) // SPEC.hop  # 20h ago: gone; the newest tile, its 1h and 3h crossings
    assert [score for _, score in members] == [float("-inf"), newest + 7, newest + 19]
    newest_tile_end = ((NOW_US - 15 * MINUTE) // SPEC.hop + 1) * SPEC.hop
    assert client.pexpiretime(key_of(store, 3)) == (newest_tile_end + span) // 1000


def test_entities_past_their_expiry_are_not_written_unless_keys_are_kept(store, replay_store, online_url):
    client = redis.Redis.from_url(online_url)
    stale = [(4, NOW_US - 10 * HOUR, None, 1.0)]
    assert writer(store).write(store, events(stale)) == 0
    assert client.exists(key_of(store, 4)) == 0
    assert writer(replay_store).write(replay_store, events(stale)) == 1
    assert client.pexpiretime(key_of(replay_store, 4)) == -1  # no expiry


def test_a_changed_definition_replaces_members_whatever_their_stamp(replay_store, online_url):
    client = redis.Redis.from_url(online_url)
    writer(replay_store).write(replay_store, events([(5, NOW_US - MINUTE, 9, 1.0)]))
    hourly = spec_of(hop=HOUR)
    assert writer(replay_store, hourly).write(replay_store, events([(5, NOW_US - HOUR, None, 2.0)])) == 1
    members = client.zrange(key_of(replay_store, 5), 0, -1)
    assert len(members) == 3  # the first point, the 1h and 3h crossings of the one tile
    assert decode_members(layout_of(hourly), members).found.tolist() == [True] * 3
    assert decode_members(layout_of(SPEC), members).found.tolist() == [False] * 3


def test_entities_with_thousands_of_tiles_in_many_calls(replay_store, online_url):
    """A 1-second hop: 6,001 members per entity (the first point, 3,000 crossings of each window;
    ZADD in chunks inside the script) and several entities per call."""
    client = redis.Redis.from_url(online_url)
    second = spec_of(hop=1_000_000)
    rows = [(d, NOW_US - k * 1_000_000, None, float(k)) for d in range(4) for k in range(3000)]
    assert writer(replay_store, second).write(replay_store, events(rows)) == 4
    assert [client.zcard(key_of(replay_store, d)) for d in range(4)] == [6001] * 4
    assert writer(replay_store, second).write(replay_store, events(rows)) == 4


def test_a_cluster_stores_every_entity_on_its_node(cluster_ports, project):  # noqa: F811
    settings = RedisSettings(f"redis://127.0.0.1:{cluster_ports[0]}/0", cluster=True, expire_keys=False)
    store = RedisStore(settings, project)
    rows = random_rows(4, drivers=200, count=1500)
    try:
        drivers = len({r[0] for r in rows})
        assert writer(store).write(store, events(rows)) == drivers
        entity_keys = f"{project}:trips:*".encode()  # the view's entities (not e.g. its freshness key)
        per_node = [len(redis.Redis(port=p).keys(entity_keys)) for p in cluster_ports]
        assert sum(per_node) == drivers and min(per_node) > 20
        newest = {}
        for d, ts, _, _ in rows:
            newest[d] = max(newest.get(d, ts), ts)
        older = [r for r in rows if r[1] < newest[r[0]]]  # every entity loses its newest event
        assert writer(store).write(store, events(older)) == 0
        assert writer(store).write(store, events(rows)) == drivers
    finally:
        store.delete_view("trips")
        store.close()


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), max_size=40), per_write=st.integers(1, 8), members=st.integers(1, 100))
def test_store_calls_hold_whole_entities_within_the_member_and_entity_bounds(sizes, per_write, members):
    """Each store call is one payload that must be sent within the socket timeout: at most
    MEMBERS_PER_WRITE members (an entity larger than that alone) and ENTITIES_PER_WRITE entities,
    every entity once, in order."""
    entities = [AggregateEntity(b"%d" % i, [b""] * size, [b"0"] * size, None) for i, size in enumerate(sizes)]
    with patch.multiple(aggregate_sync, ENTITIES_PER_WRITE=per_write, MEMBERS_PER_WRITE=members):
        parts = list(aggregate_sync._writes(entities))
    assert [e for part in parts for e in part] == entities
    for part in parts:
        assert len(part) <= per_write and (sum(len(e.members) for e in part) <= members or len(part) == 1)
