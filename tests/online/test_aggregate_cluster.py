"""Aggregate lookups on a real 3-node Redis Cluster: entities spread over the nodes, one pipeline
(split per node by redis-py) reads a plain view's rows and the aggregate view's members; values
equal the training values at every tail crossing, as on a standalone server."""

from __future__ import annotations

import random
from datetime import timedelta

import pyarrow as pa
import pytest
import redis

from granero.online.encoding import to_micros
from granero.online.lookup import ViewReader, lookup, read_views
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import write_rows
from tests.aggregation.random_events import events_table, random_case
from tests.online.aggregate_members import write_events
from tests.online.conftest import request
from tests.online.test_aggregate_consistency import assert_online_equals_training, define, entities, request_times
from tests.online.test_aggregate_lookup import DEFS, EVERY, T0
from tests.online.test_cluster import cluster_ports  # noqa: F401 (the module's cluster fixture)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.mark.parametrize("seed", [3, 11])
def test_cluster_lookups_equal_training(cluster_ports, project, seed):  # noqa: F811
    settings = RedisSettings(f"redis://127.0.0.1:{cluster_ports[2]}/0", cluster=True, expire_keys=False)
    store = RedisStore(settings, project)
    try:
        case = random_case(seed, n_events=80, n_entities=0)
        defs = define(case)
        events = list(case.events)
        random.Random(seed).shuffle(events)
        assert write_events(store, defs, defs.feature_views["events"], events_table(events)) > 0
        rows = entities(events)
        compared = assert_online_equals_training(store, defs, rows, request_times(case, events), events_table(events))
        assert compared > 10_000
        prefix = store._prefix("events")
        holding = [any(redis.Redis(port=p).scan_iter(match=prefix + b"*")) for p in cluster_ports]
        assert sum(holding) > 1  # the entities spread over the nodes
    finally:
        store.close()


def test_a_plain_and_an_aggregate_view_in_one_cluster_request(cluster_ports, project):  # noqa: F811
    store = RedisStore(RedisSettings(f"redis://127.0.0.1:{cluster_ports[0]}/0", cluster=True, expire_keys=False),
                       project)
    try:
        stamp = pa.timestamp("us", tz="UTC")
        times = [T0 - timedelta(minutes=m) for m in (0, 30, 90, 300)]
        table = pa.table({"driver_id": pa.array([1, 1, 2, 3], pa.int64()), "event_timestamp": pa.array(times, stamp),
                          "fare": pa.array([1.5, 2.5, None, 4.0]), "tier": pa.array(["a", None, "b", "c"])})
        write_events(store, DEFS, DEFS.feature_views["trips"], table)
        write_rows(store, DEFS.feature_views["plain"], {"driver_id": "int64"},
                   [{"driver_id": d, "event_timestamp": T0, "rating": float(d)} for d in (1, 2)])
        rows = [{"driver_id": d} for d in (1, 2, 3, 4)] * 5
        result = lookup_both(store, request(DEFS, "plain:rating", *EVERY), rows, T0)
        assert result["plain__rating"][:4] == [1.0, 2.0, None, None]
        assert result["trips__trips_2h"][:4] == [2, 1, 0, 0]
        assert result["trips__fare_sum_1d"][:4] == [4.0, 0.0, 4.0, 0.0]
    finally:
        store.close()


def lookup_both(store, views, rows, now):
    """The column-wise answer, checked equal to the row-by-row one (read_views)."""
    result = lookup(store, views, rows, now)
    readers = [ViewReader.of(v) for v in views]
    by_rows = read_views(store, readers, rows, to_micros(now))
    flat = [[value for reader, read in zip(readers, row, strict=True) for value in reader.values(read)]
            for row in by_rows]
    assert [[v.value for v in row] for row in flat] == [[v.value for v in row] for row in result.rows]
    return result.to_dict()
