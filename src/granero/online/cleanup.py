"""Online data of feature views the registry no longer has: dropped by ``apply`` when it removes
them, and found and dropped later by ``granero online prune`` (what ``apply`` could not reach).

Why both: ``apply`` is where a view's removal is decided and judged (access control's ``apply``
on that view), so it drops the view's rows, freshness and stream progress there, as Feast's
``apply`` tears down a removed view's online table. The registry is the source of truth, though:
an online store that is down when ``apply`` runs must not fail it, so the rows stay, ``apply``
says so, and ``prune`` finds every view that has keys in Redis but no registered definition.
Offline tables stay: they are the history that a re-added view is rebuilt from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from granero.definitions.base import NAME_PATTERN
from granero.errors import OnlineStoreUnavailable
from granero.online.redis import RedisStore


@dataclass(frozen=True)
class OnlineCleanup:
    """What dropping views' online data did."""

    dropped: dict[str, int] = field(default_factory=dict)
    """Per view dropped: how many of its keys went."""
    left: dict[str, str] = field(default_factory=dict)
    """Per view whose data stayed: why (the store could not be reached)."""


def drop_views(store: RedisStore, views: Iterable[str]) -> OnlineCleanup:
    """Every key, freshness and stream progress of ``views``; a view the store cannot reach is
    left, with the reason, for ``granero online prune`` to drop later."""
    dropped: dict[str, int] = {}
    left: dict[str, str] = {}
    for view in views:
        try:
            dropped[view] = store.delete_view(view)
        except OnlineStoreUnavailable as error:
            left[view] = str(error)
    return OnlineCleanup(dropped, left)


def unregistered_views(store: RedisStore, registered: Iterable[str]) -> list[str]:
    """The views with keys in the online store (``<project>:<view>:...``) that ``registered``
    does not name, sorted."""
    known = set(registered)
    prefix = f"{store.project}:".encode()
    found = {_view_of(key, len(prefix)) for key in store.scan_keys(prefix + b"*")}
    return sorted(view for view in found if view is not None and view not in known)


def _view_of(key: bytes, start: int) -> str | None:
    """The view part of a key after its project prefix; None when it is no view's key."""
    end = key.find(b":", start)
    name = key[start:end].decode("utf-8", "replace") if end > start else ""
    return name if NAME_PATTERN.match(name) else None
