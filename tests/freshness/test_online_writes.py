"""The latest event time written online: an atomic max per view, on real Redis (standalone and
Cluster), under concurrent writers, checked against a plain ``max`` oracle."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.errors import InvalidRequest, OnlineStoreUnavailable
from granero.freshness import (
    newest_event_micros,
    online_event_times,
    read_stream_progress,
    record_online_write,
    record_stream_progress,
)
from granero.freshness.online_writes import EXACT_MICROS
from granero.online.redis import RedisSettings, RedisStore

pytestmark = pytest.mark.redis

micros = st.integers(-EXACT_MICROS + 1, EXACT_MICROS - 1)


@settings(max_examples=60, deadline=None)
@given(writes=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), micros), max_size=30))
def test_recorded_time_is_the_max_ever_written_per_view(online_url, writes):
    store = RedisStore(RedisSettings(online_url), f"p{uuid.uuid4().hex[:12]}")  # a fresh key
    for view, at in writes:
        record_online_write(store, view, at)
    oracle: dict[str, int] = {}
    for view, at in writes:
        oracle[view] = max(oracle.get(view, at), at)
    assert online_event_times(store) == oracle
    store.close()


def test_concurrent_writers_never_lower_the_time(online_url, project):
    """Eight threads with their own stores record interleaved rising times (thread i: i, i+8,
    ...) while a reader watches: what it sees never goes down and ends at the max. A
    read-then-write or a plain SET lowers it whenever a slower writer lands after a faster one."""
    stores = [RedisStore(RedisSettings(online_url), project) for _ in range(9)]
    count, done, seen = 8 * 400, threading.Event(), []

    def write(store: RedisStore, first: int) -> None:
        for at in range(first, count, 8):
            record_online_write(store, "trips", at)

    def watch(store: RedisStore) -> None:
        while not done.is_set():
            seen.append(online_event_times(store).get("trips", -1))

    watcher = threading.Thread(target=watch, args=(stores[8],))
    watcher.start()
    threads = [threading.Thread(target=write, args=(stores[i], i)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert online_event_times(stores[0]) == {"trips": count - 1}
    assert all(a <= b for a, b in zip(seen, seen[1:], strict=False)), "the recorded time went down"
    for store in stores:
        store.close()


def test_an_older_write_never_lowers_the_time(store):
    record_online_write(store, "trips", 2_000)
    record_online_write(store, "trips", 1_000)
    assert online_event_times(store) == {"trips": 2_000}


def test_projects_do_not_share_times(online_url, store):
    record_online_write(store, "trips", 5)
    other = RedisStore(RedisSettings(online_url), store.project + "x")
    assert online_event_times(other) == {}
    other.close()


@pytest.mark.parametrize("bad", [2**53, -(2**53), 1.5, True, "1"])
def test_times_a_score_cannot_hold_exactly_are_refused(store, bad):
    with pytest.raises(InvalidRequest, match="view 'trips'"):
        record_online_write(store, "trips", bad)
    assert online_event_times(store) == {}


def test_an_unreachable_store_is_online_store_unavailable():
    store = RedisStore(RedisSettings("redis://127.0.0.1:1/0", socket_timeout_seconds=0.2), "p")
    with pytest.raises(OnlineStoreUnavailable, match="recording the freshness of view 'trips'"):
        record_online_write(store, "trips", 1)
    with pytest.raises(OnlineStoreUnavailable, match="reading stream progress"):
        read_stream_progress(store)


def test_stream_progress_round_trips_and_the_last_report_wins(store):
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    record_stream_progress(store, "trips", batch_id=4, rows=10, dead_letters=1, at=at)
    record_stream_progress(store, "trips", batch_id=5, rows=7, dead_letters=0, at=at.replace(tzinfo=None))
    (progress,) = read_stream_progress(store).values()
    assert (progress.batch_id, progress.rows, progress.dead_letters, progress.at) == (5, 7, 0, at)


@pytest.mark.parametrize(
    ("field", "value"), [("rows", -1), ("dead_letters", 1.0), ("at", "2026-01-01"), ("batch_id", None)]
)
def test_bad_stream_progress_is_refused_naming_the_field(store, field, value):
    report = {"batch_id": 1, "rows": 1, "dead_letters": 0, "at": datetime.now(UTC)} | {field: value}
    with pytest.raises(InvalidRequest, match=f"view 'trips'.*{field}"):
        record_stream_progress(store, "trips", **report)
    assert read_stream_progress(store) == {}


def test_newest_event_micros_skips_nulls_and_reads_naive_times_as_utc():
    naive = pa.chunked_array([pa.array([datetime(2026, 1, 1), None], pa.timestamp("ns"))])
    assert newest_event_micros(naive) == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 10**6
    assert newest_event_micros(pa.array([None], pa.timestamp("us", tz="UTC"))) is None


@pytest.mark.slow
def test_max_and_progress_on_a_cluster(cluster_ports, project):
    store = RedisStore(RedisSettings(f"redis://127.0.0.1:{cluster_ports[2]}/0", cluster=True), project)
    for view, at in [("a", 3), ("b", 9), ("a", 1), ("b", 4), ("a", 8)]:
        record_online_write(store, view, at)
    record_stream_progress(store, "a", batch_id="x", rows=1, dead_letters=0, at=datetime.now(UTC))
    assert online_event_times(store) == {"a": 8, "b": 9}
    assert read_stream_progress(store)["a"].batch_id == "x"
    store.close()
