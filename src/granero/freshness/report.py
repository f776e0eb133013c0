"""Each view's freshness in one place: what Redis and the registry know about its writers.

Read by ``granero status`` and, at each scrape, by the serving metrics; it costs two Redis round
trips (the freshness set and the stream progress hash) and two small registry files, whatever
the number of views, and never touches a view's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from granero.freshness.online_writes import online_event_times
from granero.freshness.stream_progress import StreamProgress, read_stream_progress
from granero.registry.intervals import Interval, read_interval_map
from granero.registry.runs import MaterializationRun, read_runs
from granero.registry.sync_progress import PENDING_FILE

if TYPE_CHECKING:
    from granero.feature_store import FeatureStore
    from granero.online.redis import RedisStore
    from granero.registry.store import FileRegistry

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ViewFreshness:
    """One view: the latest event time written online (None: never), its age at ``now``, its
    last materialization, the windows materialized but not yet synced, and its stream's last batch."""

    view: str
    online: bool
    latest_event: datetime | None
    age_seconds: float | None
    last_run: MaterializationRun | None
    pending: tuple[Interval, ...]
    stream: StreamProgress | None

    def to_json(self) -> dict[str, object]:
        run = self.last_run
        return {
            "view": self.view, "online": self.online,
            "latest_event_online": self.latest_event.isoformat() if self.latest_event else None,
            "age_seconds": self.age_seconds,
            "last_materialized": run.interval.model_dump(mode="json") if run else None,
            "materialized_at": run.ran_at.isoformat() if run else None,
            "pending_sync": [i.model_dump(mode="json") for i in self.pending],
            "stream": self.stream.to_json() if self.stream else None,
        }


def freshness_report(
    store: RedisStore, registry: FileRegistry, views: Iterable[tuple[str, bool]], now: datetime
) -> list[ViewFreshness]:
    """Per (view name, online) of ``views``, in their order, its freshness as of ``now``."""
    latest, streams = online_event_times(store), read_stream_progress(store)
    runs, pending = read_runs(registry.path), read_interval_map(registry.path / PENDING_FILE)
    report = []
    for view, online in views:
        event = EPOCH + timedelta(microseconds=latest[view]) if view in latest else None
        age = (now - event).total_seconds() if event else None
        report.append(ViewFreshness(view, online, event, age, runs.get(view),
                                    tuple(pending.get(view, [])), streams.get(view)))
    return report


def stale_views(report: Iterable[ViewFreshness], threshold: timedelta) -> list[ViewFreshness]:
    """The online views of ``report`` whose latest event online is older than ``threshold``, or
    that were never written online; offline-only views are never stale (nothing is served)."""
    limit = threshold.total_seconds()
    return [view for view in report if view.online and (view.age_seconds is None or view.age_seconds > limit)]


def store_freshness(store: FeatureStore, now: datetime | None = None) -> list[ViewFreshness]:
    """``freshness_report`` of every registered view of ``store`` (none before the first apply)."""
    current = store.registry.current()
    views = current.definitions.feature_views.values() if current else []
    named = [(view.name, view.online) for view in views]
    return freshness_report(store.online_store, store.registry, named, now or datetime.now(UTC))
