"""Freshness as Prometheus gauges, computed when ``/metrics`` is scraped, never per request.

    granero_view_freshness_seconds{view}                       now - latest event time online
    granero_view_last_materialization_timestamp_seconds{view}  when it was last materialized
    granero_view_pending_sync_windows{view}                    materialized windows not yet online
    granero_view_stream_last_batch_age_seconds{view}           now - its stream's last micro-batch

A view gets a sample only where the value is known (never written online: no freshness sample).
While the online store is unreachable the scrape carries no freshness samples at all;
``granero_serving_healthy`` says why. Other errors (an unreadable registry file) fail the scrape
loudly rather than reporting stale gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily

from granero.errors import OnlineStoreUnavailable
from granero.freshness.report import ViewFreshness

GAUGES = {
    "granero_view_freshness_seconds":
        "Seconds between now and the latest event time written to the online store, by view.",
    "granero_view_last_materialization_timestamp_seconds":
        "When the view was last materialized (Unix time).",
    "granero_view_pending_sync_windows":
        "Materialized windows of the view the online store has not caught up with.",
    "granero_view_stream_last_batch_age_seconds":
        "Seconds since the view's streaming query last reported a micro-batch.",
}


class FreshnessCollector:
    """A prometheus-client collector over ``report`` (the views' freshness at a given now)."""

    def __init__(self, report: Callable[[datetime], list[ViewFreshness]]) -> None:
        self.report = report

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        try:
            views = self.report(now)
        except OnlineStoreUnavailable:
            return iter(())
        families = self._families()
        for view in views:
            for family, value in zip(families, gauge_values(view, now), strict=True):
                if value is not None:
                    family.add_metric([view.view], value)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, text, labels=["view"]) for name, text in GAUGES.items()]


def gauge_values(view: ViewFreshness, now: datetime) -> list[float | None]:
    """The view's value of each of GAUGES, in order; None where unknown."""
    run, stream = view.last_run, view.stream
    return [
        view.age_seconds,
        run.ran_at.timestamp() if run else None,
        float(len(view.pending)) if view.online else None,
        (now - stream.at).total_seconds() if stream else None,
    ]
