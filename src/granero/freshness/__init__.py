"""Freshness: how old the newest value served online is, per view, and where each writer stands.

    online_writes    the latest event time ever written online per view (atomic max in Redis)
    stream_progress  what each streaming query last reported (batch id, rows, dead letters, when)
    report           both, with the registry's last materialization and pending sync windows
    collector        the report as Prometheus gauges, computed at each scrape
    forget           a deleted view's records removed with its rows (``RedisStore.delete_view``)

Every online writer (batch sync, push, stream) calls ``record_online_write`` after a successful
write; ``granero status`` and the ``granero_view_freshness_seconds`` gauge read it. Nothing
heavy is imported here.
"""

from granero.freshness.forget import forget_view
from granero.freshness.online_writes import (
    newest_event_micros,
    online_event_times,
    record_online_write,
)
from granero.freshness.stream_progress import (
    StreamProgress,
    read_stream_progress,
    record_stream_progress,
)

__all__ = [
    "StreamProgress",
    "forget_view",
    "newest_event_micros",
    "online_event_times",
    "read_stream_progress",
    "record_online_write",
    "record_stream_progress",
]
