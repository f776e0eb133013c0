"""The latest event time written online per view, kept in Redis as an atomic max.

One sorted set per project, ``__freshness__:<project>``, holds a member per view scored by the
newest event time (µs since the epoch) any writer stored for it. ``ZADD GT`` raises a score and
never lowers it, in one command on one key: atomic under concurrent writers, one round trip, and
on a Cluster the key lives in one slot. The key lies outside the ``<project>:`` key space of
feature rows (``<project>:<view>:<entity>``), so whatever scans a project's rows never meets it,
and a project name (letters, digits, ``_``) cannot make the two collide.

Scores are doubles, exact for integers below 2**53 µs (until the year 2255); a later event time
is refused rather than rounded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from granero.errors import InvalidRequest, OnlineStoreUnavailable

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.online.redis import RedisStore

EXACT_MICROS = 2**53
"""Event times (µs) a Redis score holds exactly: |micros| below this."""


def freshness_key(project: str) -> str:
    return f"__freshness__:{project}"


def record_online_write(store: RedisStore, view: str, latest_event_micros: int) -> None:
    """Raise the view's latest online event time to ``latest_event_micros`` unless it already
    is later; for writers to call after a successful write (a failed one records nothing)."""
    micros = exact_micros(view, latest_event_micros)
    with translated_errors(store, f"recording the freshness of view {view!r}"):
        store.client.zadd(freshness_key(store.project), {view: micros}, gt=True)


def online_event_times(store: RedisStore) -> dict[str, int]:
    """Per view, the latest event time (µs) ever written online; views never written are absent."""
    with translated_errors(store, "reading freshness"):
        scored = store.client.zrange(freshness_key(store.project), 0, -1, withscores=True)
    return {member.decode(): int(score) for member, score in scored}


def exact_micros(view: str, micros: object) -> int:
    """``micros`` as an int a Redis score holds exactly; InvalidRequest otherwise."""
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise InvalidRequest(
            f"view {view!r}: latest event time must be integer microseconds, got {micros!r}"
        )
    if not -EXACT_MICROS < micros < EXACT_MICROS:
        raise InvalidRequest(
            f"view {view!r}: event time {micros} µs is beyond what freshness tracking records "
            "exactly (1684-07-28 to 2255-06-05)"
        )
    return micros


@contextlib.contextmanager
def translated_errors(store: RedisStore, action: str) -> Iterator[None]:
    """redis-py's errors as OnlineStoreUnavailable, naming the store (password masked)."""
    from redis.exceptions import RedisClusterException, RedisError

    try:
        yield
    except (RedisError, RedisClusterException) as error:
        raise OnlineStoreUnavailable(
            f"online store {store.settings.safe_url}: {action} failed: "
            f"{type(error).__name__}: {error}"
        ) from error


def newest_event_micros(column: pa.Array | pa.ChunkedArray) -> int | None:
    """The newest non-null time of a timestamp column in µs since the epoch (naive times are
    UTC), None when it holds none: what a writer passes to ``record_online_write``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    micros = column.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64())
    return pc.max(micros).as_py()
