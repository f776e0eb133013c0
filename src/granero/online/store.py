"""The online store interface, and building the configured one.

The contract is four methods, kept small on purpose: everything about Granero's data (keys,
value format, versions) lives in granero.online.encoding, so a backend only moves bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from granero.online.embedded import EmbeddedRedis, EmbeddedRedisConfig, ServerLease
from granero.online.redis import RedisConfig, RedisSettings, RedisStore, WindowRead


class OnlineStore(Protocol):
    """Latest feature rows by (view, entity key); values are opaque bytes that carry a version."""

    def write_batch(
        self,
        view: str,
        keys: Sequence[bytes],
        values: Sequence[bytes],
        expire_at_ms: Sequence[int] | None = None,
    ) -> int:
        """Write each value unless the stored one is newer; returns how many were stored."""
        ...

    def read(
        self, lookups: Sequence[tuple[str, bytes]], windows: Sequence[WindowRead] = ()
    ) -> list[bytes | None]:
        """The value per (view, entity key), None when absent; then per window read, per key, per
        tile, the first member at or after the tile (aggregate views). One round trip."""
        ...

    def delete_view(self, view: str) -> int:
        """Remove every row of a view; returns how many went."""
        ...

    def close(self) -> None: ...


class EmbeddedRedisStore(RedisStore):
    """A RedisStore on the embedded server that holds a lease on it: ``close`` releases the
    lease, so the last process done with the server stops it (see granero.online.embedded)."""

    def __init__(self, lease: ServerLease, project: str, *, expire_keys: bool = True) -> None:
        super().__init__(RedisSettings(lease.server.url, expire_keys=expire_keys), project)
        self.lease = lease

    def close(self) -> None:
        super().close()
        self.lease.release()


def build_online_store(config: RedisConfig | EmbeddedRedisConfig, project: str) -> RedisStore:
    """The store ``config`` describes; an embedded server is started (or reused) first, and
    stopped when the store is closed unless another process still uses it or it is kept."""
    if isinstance(config, EmbeddedRedisConfig):
        lease = EmbeddedRedis(config.data_dir).lease(config.keep_running)
        return EmbeddedRedisStore(lease, project, expire_keys=config.expire_keys)
    return RedisStore(config.settings(), project)
