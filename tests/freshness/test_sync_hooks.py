"""Every batch online writer raises the view's latest online event time after a successful write,
and a failed or empty write records nothing: plain views in process (the executors' writer) and
aggregate views, on a real redis-server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import redis

from granero.aggregation.spec import aggregation_spec
from granero.errors import OnlineStoreUnavailable
from granero.freshness import online_event_times
from granero.online.aggregate_sync import AggregateWriter
from granero.online.encoding import encode_entity_key, key_prefix
from granero.online.sync import write_rows
from tests.online.conftest import FRESH
from tests.online.test_aggregate_sync import T0
from tests.online.test_aggregate_sync import define as define_aggregates

pytestmark = pytest.mark.redis


def micros(at: datetime) -> int:
    return int(at.timestamp()) * 10**6 + at.microsecond


def stats_rows(times: list[datetime]) -> list[dict]:
    return [{"driver_id": d, "event_timestamp": at, "conv_rate": 0.5, "trips": d, "tier": "a"}
            for d, at in enumerate(times)]


def test_a_plain_sync_records_its_newest_row(replay_store, defs):
    view = defs.feature_views["stats"]
    newest = FRESH + timedelta(seconds=3, microseconds=7)
    write_rows(replay_store, view, defs.join_keys(view), stats_rows([FRESH, newest, FRESH]))
    assert online_event_times(replay_store) == {"stats": micros(newest)}
    write_rows(replay_store, view, defs.join_keys(view), stats_rows([FRESH - timedelta(days=1)]))
    assert online_event_times(replay_store) == {"stats": micros(newest)}  # older rows: no change


def test_a_write_of_rows_past_their_ttl_records_nothing(store, defs):
    view = defs.feature_views["stats"]  # ttl 1h: rows of last year are not written at all
    assert write_rows(store, view, defs.join_keys(view), stats_rows([datetime(2025, 1, 1, tzinfo=UTC)])) == 0
    assert online_event_times(store) == {}


def test_a_failed_write_records_nothing(store, defs, online_url):
    view = defs.feature_views["stats"]
    key = key_prefix(store.project, "stats") + encode_entity_key(["int64"], [0])
    redis.Redis.from_url(online_url).zadd(key, {b"x": 1})  # the script's GETRANGE fails: WRONGTYPE
    with pytest.raises(OnlineStoreUnavailable):
        write_rows(store, view, defs.join_keys(view), stats_rows([datetime.now(UTC)]))
    assert online_event_times(store) == {}


def test_an_aggregate_sync_records_its_newest_event(replay_store, tmp_path):
    defs = define_aggregates(tmp_path)
    spec = aggregation_spec(defs, defs.feature_views["trips"])
    newest = T0 + timedelta(minutes=7, microseconds=3)
    events = pa.table({
        "driver_id": pa.array([1, 2, 1], pa.int64()),
        "event_timestamp": pa.array([T0, newest, None], pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array([None, None, None], pa.timestamp("us", tz="UTC")),
        "fare": pa.array([1.0, 2.0, 3.0]),
    })
    writer = AggregateWriter(replay_store.settings, replay_store.project, "trips", spec)
    assert writer.write(replay_store, events) == 2
    assert online_event_times(replay_store) == {"trips": micros(newest)}


def test_an_aggregate_write_of_expired_entities_records_nothing(store, tmp_path):
    defs = define_aggregates(tmp_path)
    spec = aggregation_spec(defs, defs.feature_views["trips"])
    events = pa.table({
        "driver_id": pa.array([1], pa.int64()),
        "event_timestamp": pa.array([datetime(2025, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array([None], pa.timestamp("us", tz="UTC")),
        "fare": pa.array([1.0]),
    })
    assert AggregateWriter(store.settings, store.project, "trips", spec).write(store, events) == 0
    assert online_event_times(store) == {}
