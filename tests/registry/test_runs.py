"""The registry records when each view was last materialized, with the interval it wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from granero.errors import RegistryError
from granero.registry.intervals import Interval
from granero.registry.runs import RUNS_FILE, read_runs
from granero.registry.store import FileRegistry


def interval(start_day: int, end_day: int) -> Interval:
    return Interval(start=datetime(2026, 1, start_day, tzinfo=UTC), end=datetime(2026, 1, end_day, tzinfo=UTC))


def test_the_last_run_per_view_is_kept_with_its_wall_time(tmp_path):
    registry = FileRegistry(tmp_path)
    before = datetime.now(UTC)
    registry.record_materialized("a", interval(3, 4))
    registry.record_materialized("b", interval(1, 2))
    registry.record_materialized("a", interval(1, 2))  # a backfill: the last run, not the latest
    after = datetime.now(UTC)
    runs = read_runs(tmp_path)
    assert {v: r.interval for v, r in runs.items()} == {"a": interval(1, 2), "b": interval(1, 2)}
    assert all(before <= r.ran_at <= after for r in runs.values())
    assert runs["b"].ran_at <= runs["a"].ran_at


def test_no_run_reads_empty_and_a_broken_file_names_itself(tmp_path):
    assert read_runs(tmp_path) == {}
    (tmp_path / RUNS_FILE).write_text("{not json")
    with pytest.raises(RegistryError, match=RUNS_FILE):
        read_runs(tmp_path)
