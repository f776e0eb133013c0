"""Interval arithmetic against a set-of-hours oracle, and the pending online windows on disk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.errors import RegistryError
from granero.registry import FileRegistry, Interval, add_interval
from granero.registry.intervals import subtract_interval
from granero.registry.sync_progress import PENDING_FILE, SyncProgress

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def hours(a: int, b: int) -> Interval:
    return Interval(start=T0 + timedelta(hours=a), end=T0 + timedelta(hours=b))


def covered(intervals: list[Interval]) -> set[int]:
    """The hours [h, h+1) an interval list covers (all bounds are whole hours here)."""
    return {
        h
        for i in intervals
        for h in range((i.start - T0) // timedelta(hours=1), (i.end - T0) // timedelta(hours=1))
    }


spans = st.tuples(st.integers(0, 40), st.integers(1, 10)).map(lambda t: hours(t[0], t[0] + t[1]))


@settings(max_examples=300, deadline=None)
@given(st.lists(spans, max_size=8), st.lists(spans, max_size=4))
def test_add_and_subtract_match_sets_of_hours(added, removed):
    state: list[Interval] = []
    for interval in added:
        state = add_interval(state, interval)
    for interval in removed:
        state = subtract_interval(state, interval)
    expected = covered(added) - covered(removed)
    assert covered(state) == expected
    assert state == sorted(state, key=lambda i: i.start)  # sorted and disjoint
    assert all(a.end <= b.start for a, b in zip(state, state[1:], strict=False))


def test_pending_windows_persist_merge_and_clear(tmp_path):
    registry = FileRegistry(tmp_path / "registry")
    progress = SyncProgress(registry)
    assert progress.pending("stats") == []
    progress.add("stats", hours(0, 2))
    progress.add("stats", hours(2, 3))
    progress.add("other", hours(5, 6))
    assert SyncProgress(FileRegistry(tmp_path / "registry")).pending("stats") == [hours(0, 3)]
    progress.synced("stats", [hours(1, 2)])
    assert progress.pending("stats") == [hours(0, 1), hours(2, 3)]
    progress.synced("stats", [hours(0, 1), hours(2, 3)])
    assert progress.pending("stats") == [] and progress.pending("other") == [hours(5, 6)]
    stored = json.loads((tmp_path / "registry" / PENDING_FILE).read_text())
    assert list(stored) == ["other"]  # a view with nothing pending is dropped from the file


def test_an_unreadable_pending_file_is_named(tmp_path):
    (tmp_path / PENDING_FILE).write_text("{not json")
    with pytest.raises(RegistryError, match=PENDING_FILE):
        SyncProgress(FileRegistry(tmp_path)).pending("stats")
