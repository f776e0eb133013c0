"""Deleting a view's online rows forgets its freshness and stream progress too, on real Redis:
status and the gauges then report it as never written, and other views keep theirs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.freshness import online_event_times, read_stream_progress, record_online_write, record_stream_progress
from granero.freshness.collector import FreshnessCollector
from granero.freshness.report import freshness_report
from granero.online.redis import RedisSettings, RedisStore
from granero.registry import FileRegistry

pytestmark = pytest.mark.redis

VIEWS = ["trips", "stats", "fares", "ratings"]
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def written(store: RedisStore, view: str, micros: int) -> None:
    """One row online, its freshness and a stream report: what any writer leaves for a view."""
    store.write_batch(view, [b"1"], [b"value"])
    record_online_write(store, view, micros)
    record_stream_progress(store, view, batch_id=1, rows=1, dead_letters=0, at=NOW)


@settings(max_examples=15, deadline=None)
@given(views=st.dictionaries(st.sampled_from(VIEWS), st.integers(0, 2**40), min_size=1),
       deleted=st.sets(st.sampled_from(VIEWS)))
def test_deleted_views_are_forgotten_and_the_others_kept(online_url, tmp_path_factory, views, deleted):
    store = RedisStore(RedisSettings(online_url, expire_keys=False), f"f{uuid.uuid4().hex[:12]}")
    for view, micros in views.items():
        written(store, view, micros)
    for view in deleted:
        store.delete_view(view)
    kept = {view: micros for view, micros in views.items() if view not in deleted}
    assert online_event_times(store) == kept
    assert set(read_stream_progress(store)) == set(kept)
    registry = FileRegistry(tmp_path_factory.mktemp("registry"))
    report = freshness_report(store, registry, [(view, True) for view in VIEWS], NOW)
    assert [r.view for r in report if r.latest_event or r.stream] == [v for v in VIEWS if v in kept]
    families = FreshnessCollector(lambda now: report).collect()
    freshness = next(f for f in families if f.name == "granero_view_freshness_seconds")
    assert sorted(sample.labels["view"] for sample in freshness.samples) == sorted(kept)
    store.close()


def test_a_view_registered_again_starts_unwritten(store):
    """ZADD GT never lowers a time: without forgetting, a re-created view inherits the old one."""
    written(store, "trips", 2**40)
    store.delete_view("trips")
    record_online_write(store, "trips", 5)
    assert online_event_times(store) == {"trips": 5}
