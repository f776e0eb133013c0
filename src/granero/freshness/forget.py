"""Forgetting a view: its freshness member and stream progress go with its online rows.

Both records live outside the view's ``<project>:<view>:`` key space, so deleting the rows by
prefix leaves them behind: status and the gauges would go on reporting values no longer served,
and a view later registered under the same name would inherit the old time (``ZADD GT`` never
lowers it). ``RedisStore.delete_view`` calls this after the rows are gone; re-running is harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from granero.freshness.online_writes import freshness_key, translated_errors
from granero.freshness.stream_progress import progress_key

if TYPE_CHECKING:
    from granero.online.redis import RedisStore


def forget_view(store: RedisStore, view: str) -> None:
    """Remove the view's latest online event time and its stream's last report (two keys, which
    may sit on two Cluster nodes: two commands)."""
    with translated_errors(store, f"forgetting the freshness of view {view!r}"):
        store.client.zrem(freshness_key(store.project), view)
        store.client.hdel(progress_key(store.project), view)
