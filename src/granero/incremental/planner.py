"""One view's incremental run, planned: the windows to (re)materialize and the source mark to
record once they committed.

Which sources get which guarantee:

- a Delta source (``FileSource(format="delta")``, or a ``TableSource`` that is a Delta table):
  every commit after the version the last run read is looked at, so rows appended, updated or
  deleted at any event time are re-materialized (exact, by commit versions);
- any other source: ``[last end - allowed_lateness, end)`` (``allowed_lateness`` defaults to 0);
  rows later than that are lost until their window is materialized by hand;
- rows pushed or streamed (the landing folder): the windows of files landed since the last run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from granero.definitions import FeatureView
from granero.incremental.delta_log import changes_since
from granero.incremental.delta_source import (
    delta_changes,
    delta_location,
    everything,
    log_folder,
    timestamp_column,
)
from granero.incremental.plan import Change, Rerun, lookback, plan_windows, utc_days
from granero.offline.delta import latest_version, local_path
from granero.offline.sources import describe_source
from granero.registry import Interval
from granero.registry.source_progress import SourceMark

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession

LANDED = "rows landed by push or stream"


@dataclass(frozen=True)
class ViewPlan:
    """The windows to write, in order, and the mark to record after all of them committed."""

    reruns: list[Rerun]
    mark: SourceMark


class IncrementalPlanner:
    """Plans views' incremental runs from their sources' logs and the landing folder."""

    def __init__(self, spark: Callable[[], SparkSession], repo_path: Path, offline_path: str) -> None:
        self.spark = spark
        self.repo_path = repo_path
        self.offline_path = offline_path

    def plan(self, view: FeatureView, done: Sequence[Interval], end: datetime,
             mark: SourceMark | None) -> ViewPlan:
        """``mark`` is what the view's last run recorded (None: no run recorded one)."""
        identity = describe_source(view.source, self.repo_path)
        known = mark if mark is not None and mark.source == identity else None
        changed, version = self._source_changes(view, done, known)
        landed, marker = self._landed(view, known)
        lateness = lookback(done, view.source.allowed_lateness)
        changes = [*changed, *landed, *([lateness] if lateness else [])]
        return ViewPlan(plan_windows(done, end, changes), SourceMark(
            source=identity, delta_version=version, landing_marker=marker))

    def _source_changes(
        self, view: FeatureView, done: Sequence[Interval], known: SourceMark | None
    ) -> tuple[list[Change], int | None]:
        """A Delta source's changes since the recorded version, and its version now."""
        location = delta_location(view.source, self.repo_path, self.spark)
        if location is None:
            return [], None
        folder = log_folder(location, self.spark)
        if known is None:  # first run, or materialized before versions were recorded (or re-pointed)
            unknown = [everything(f"no version of Delta source {location} recorded yet")] if done else []
            return unknown, latest_version(folder.names())
        column = timestamp_column(view.source)
        found = changes_since(folder, known.delta_version, column)
        return delta_changes(location, found, known.delta_version, column, self.spark), found.latest

    def _landed(self, view: FeatureView, known: SourceMark | None) -> tuple[list[Change], str | None]:
        """The windows of rows landed (pushed, streamed) since the recorded marker."""
        from granero.offline import landing

        location = landing.landing_location(self.offline_path)
        if local_path(location) is None:  # rows land on local file systems only
            return [], None
        marker = known.landing_marker if known else None
        windows, new_marker = landing.landed_since(location, view.name, marker)
        last = timedelta(microseconds=1)
        return [Change(utc_days(w.start, w.end - last), LANDED) for w in windows], new_marker
