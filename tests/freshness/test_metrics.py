"""The freshness gauges through a live server's /metrics endpoint: computed at scrape time from
what the writers recorded in a real Redis and the registry, absent while Redis is down."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from granero.feature_store import FeatureStore
from granero.freshness import record_stream_progress
from granero.registry.intervals import Interval
from granero.serving.config import ServingConfig
from granero.serving.server import ServerHandle, build_server
from tests.serving.conftest import write_repo, write_rows

pytestmark = pytest.mark.redis

VIEWS = ("all_types", "driver_stats", "route_stats", "driver_trips")  # tests.serving's repo


def scrape(port: int) -> dict[tuple[str, str], float]:
    """Every freshness sample: (name, view) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, s.labels["view"]): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name.startswith("granero_view_")}


@pytest.fixture
def served(tmp_path, online_url, project) -> Iterator[tuple[FeatureStore, ServerHandle]]:
    repo = write_repo(tmp_path / "repo", online_url, project)
    with FeatureStore(repo) as store:
        store.apply()
        config = ServingConfig(port=0, metrics_port=0)
        with build_server(store, config) as handle:
            yield store, handle


def test_gauges_follow_the_writers(served):
    store, server = served
    nothing_pending = {("granero_view_pending_sync_windows", view): 0 for view in VIEWS}
    assert scrape(server.metrics_port) == nothing_pending  # nothing written, materialized, streamed
    event = datetime.now(UTC) - timedelta(minutes=3)
    write_rows(store, "driver_stats", [{"driver_id": 1, "event_timestamp": event, "conv_rate": 0.5}])
    window = Interval(start=event - timedelta(hours=1), end=event)
    store.registry.record_materialized("route_stats", window)
    store.sync_progress.add("route_stats", window)
    streamed_at = datetime.now(UTC) - timedelta(seconds=30)
    record_stream_progress(store.online_store, "driver_stats", batch_id=3, rows=1, dead_letters=0, at=streamed_at)
    before = datetime.now(UTC)
    samples = scrape(server.metrics_port)
    after = datetime.now(UTC)
    age = samples.pop(("granero_view_freshness_seconds", "driver_stats"))
    assert (before - event).total_seconds() <= age <= (after - event).total_seconds()
    lag = samples.pop(("granero_view_stream_last_batch_age_seconds", "driver_stats"))
    assert (before - streamed_at).total_seconds() <= lag <= (after - streamed_at).total_seconds()
    ran_at = samples.pop(("granero_view_last_materialization_timestamp_seconds", "route_stats"))
    assert before.timestamp() - 60 < ran_at <= before.timestamp()
    pending = {view: samples.pop(("granero_view_pending_sync_windows", view)) for view in VIEWS}
    assert pending == {"all_types": 0, "driver_stats": 0, "route_stats": 1, "driver_trips": 0}
    assert samples == {}  # nothing else is known: no sample rather than a made-up one


def test_a_newer_write_lowers_the_gauge(served):
    store, server = served
    now = datetime.now(UTC)
    write_rows(store, "driver_stats", [{"driver_id": 1, "event_timestamp": now - timedelta(hours=2)}])
    old = scrape(server.metrics_port)[("granero_view_freshness_seconds", "driver_stats")]
    write_rows(store, "driver_stats", [{"driver_id": 2, "event_timestamp": now - timedelta(seconds=5)}])
    new = scrape(server.metrics_port)[("granero_view_freshness_seconds", "driver_stats")]
    assert old >= 7200 and new < 7200 - 60


def test_no_freshness_samples_while_redis_is_down(tmp_path, own_redis, project):
    repo = write_repo(tmp_path / "repo", own_redis.url, project)
    with FeatureStore(repo) as store:
        store.apply()
        write_rows(store, "driver_stats", [{"driver_id": 1, "event_timestamp": datetime.now(UTC)}])
        with build_server(store, ServingConfig(port=0, metrics_port=0)) as server:
            assert ("granero_view_freshness_seconds", "driver_stats") in scrape(server.metrics_port)
            own_redis.stop()
            assert scrape(server.metrics_port) == {}
