"""Redis online store (standalone or Cluster): pipelined write-if-newer, one-round-trip reads.

Writes go through one Lua script, loaded once and called by EVALSHA, that compares the version
(event_timestamp, created_timestamp) stored in bytes 1-16 of the current value with the new
one: an older row never replaces a newer one, an equal version overwrites (so a corrected
re-run lands), and check and SET are atomic. A call covers up to KEYS_PER_CALL keys on a
standalone server and one key on a Cluster (a script must keep to one slot there); calls are
pipelined ``batch_size`` keys at a time. Each key expires at its row's event_timestamp + the
view's ttl (PXAT), so Redis reclaims rows nobody may be served any more.

Reads are one MGET on a standalone server, followed in the same packed payload by one ZRANGE
per aggregate entity (``redis_wire.WINDOW_READ``); on a Cluster, one pipeline that redis-py
splits into one round trip per node holding requested keys.

Consistency of expiry: once a key has expired a lookup says NOT_FOUND where the read-time ttl
check alone would have said OUTSIDE_MAX_AGE; both withhold the value (null), exactly as the
offline point-in-time join does for a row older than the ttl. Rows already past their ttl when
synced are not written at all. Expiry follows the wall clock; ``expire_keys: false`` keeps rows
until they are overwritten (to replay old data at a fixed ``now``), the read-time check stays.

redis-py is imported on first use, so loading the config never imports it. Every redis error is
translated here into OnlineStoreUnavailable.

Threads: one store is shared by the gRPC server's request threads. The client is built once,
under a lock, and never torn down while the store is in use (only ``close()`` does that, by its
owner). A request that fails disconnects the one connection it used and no other, so a timeout
on a frozen server never cuts a neighbour's request short: each request keeps its own budget of
two attempts x ``socket_timeout_seconds``. Recovery needs no reset: the pool replaces a
disconnected or dead connection when it is next handed out. A Cluster client that failed is
replaced (not closed, as other threads may still hold it) so the topology is discovered afresh.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from granero.errors import ConfigError, OnlineStoreUnavailable
from granero.online.encoding import key_prefix
from granero.online.redis_wire import last_members, pack, read_replies, window_read, window_reads
from granero.redaction import redact_url

if TYPE_CHECKING:
    from granero.online.aggregate_writes import AggregateEntity

WRITE_IF_NEWER = """
local written = 0
for i, key in ipairs(KEYS) do
  local value, expire_at = ARGV[2 * i - 1], ARGV[2 * i]
  local stored = redis.call('GETRANGE', key, 1, 16)
  local older = false
  if #stored == 16 then
    local old_event, old_created = struct.unpack('<i8i8', stored)
    local new_event, new_created = struct.unpack('<i8i8', value, 2)
    older = new_event < old_event or (new_event == old_event and new_created < old_created)
  end
  if not older then
    if expire_at == '' then
      redis.call('SET', key, value)
    else
      redis.call('SET', key, value, 'PXAT', expire_at)
    end
    written = written + 1
  end
end
return written
"""
"""KEYS: the keys; ARGV: per key its encoded value and expire-at unix ms ('' for never).
Returns how many values were stored (the others were older than what Redis holds)."""



class WindowRead(NamedTuple):
    """Window reads of one aggregate view: per entity key, per tile index, the last member of
    the key's sorted set scored at or before the tile (``online.aggregate_encoding``)."""

    view: str
    keys: Sequence[bytes]
    tiles: Sequence[int]

KEYS_PER_CALL = 100
"""Keys per script call on a standalone server: 2x the throughput of one call per key, while a
call blocks concurrent lookups for well under a millisecond."""


class RedisConfig(BaseModel):
    """``online_store: {type: redis, url: redis://..., cluster: false}``.

    ``url`` may carry a password and TLS (``rediss://``); ``cluster: true`` treats it as any node
    of a Redis Cluster.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # the url is a secret

    type: Literal["redis"] = "redis"
    url: str = Field("redis://127.0.0.1:6379/0", repr=False)  # may hold a password
    cluster: bool = False
    socket_timeout_seconds: float = 1.0
    expire_keys: bool = True
    """Let Redis drop each row once its view's ttl has passed (by the wall clock)."""

    @field_validator("url")
    @classmethod
    def _readable_url(cls, url: str) -> str:
        check_url(url)
        return url

    def settings(self) -> RedisSettings:
        return RedisSettings(self.url, self.cluster, self.socket_timeout_seconds, self.expire_keys)


_QUERY = re.compile(r"^[A-Za-z_]+=[^&]*(&[A-Za-z_]+=[^&]*)*$")


def check_url(url: str) -> None:
    """Raise ValueError unless redis-py reads ``url`` as written. An unencoded '/', '?' or '#'
    in a password moves its tail into the path, query or fragment, where redis-py would quote
    it in an error or connect somewhere else; the message shows no part of the secret."""
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{shown}: the scheme must be redis://, rediss:// or unix://")
    misplaced = parts.fragment or (parts.query and not _QUERY.match(parts.query))
    if misplaced or (parts.scheme != "unix" and "@" in parts.path):
        raise ValueError(
            f"{shown} cannot be parsed: percent-encode special characters of the user name and "
            "password (e.g. '/' as %2F, '?' as %3F, '#' as %23, '@' as %40, '%' as %25)"
        )
    try:
        parts.port  # noqa: B018 (parsed for its check)
    except ValueError:
        raise ValueError(f"{shown}: the port is not a number") from None


@dataclass(frozen=True)
class RedisSettings:
    """What a RedisStore is built from: plain picklable data, so Spark executors build their own."""

    url: str
    cluster: bool = False
    socket_timeout_seconds: float = 1.0
    expire_keys: bool = True

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"RedisSettings({self.safe_url!r}, cluster={self.cluster})"


class RedisStore:
    """Feature rows in Redis, one key per (view, entity); see granero.online.encoding."""

    def __init__(self, settings: RedisSettings, project: str, *, batch_size: int = 2000) -> None:
        self.settings = settings
        self.project = project
        self.batch_size = batch_size
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._script_sha: str | None = None
        self._prefixes: dict[str, bytes] = {}

    def write_batch(
        self,
        view: str,
        keys: Sequence[bytes],
        values: Sequence[bytes],
        expire_at_ms: Sequence[int] | None = None,
    ) -> int:
        """Write-if-newer each (entity key, value); returns how many values were stored.

        Versions travel inside the values (bytes 1-16). Rows whose ``expire_at_ms`` has passed
        are skipped when keys expire.
        """
        rows = self._live_rows(keys, values, expire_at_ms)
        prefix, written = self._prefix(view), 0
        with self._unavailable_on_error(f"writing view {view!r}"):
            for start in range(0, len(rows), self.batch_size):
                written += self._write_chunk(prefix, rows[start : start + self.batch_size])
        return written

    def write_aggregate_entities(self, view: str, entities: Sequence[AggregateEntity]) -> int:
        """Rewrite each entity's sorted set whole, unless Redis holds a newer stamp
        (granero.online.aggregate_writes); returns how many entities were written. Entities
        whose expiry has passed are skipped when keys expire."""
        from granero.online.aggregate_writes import MEMBERS_PER_CALL, write_calls

        now_ms = int(time.time() * 1000)
        live = [e._replace(expire_at_ms=e.expire_at_ms if self.settings.expire_keys else None)
                for e in entities if not self.settings.expire_keys or e.expire_at_ms > now_ms]
        calls = list(write_calls(self._prefix(view), live, 0 if self.settings.cluster else MEMBERS_PER_CALL))
        with self._unavailable_on_error(f"writing view {view!r}"):
            if not self.settings.cluster:
                replies = self._run_packed(calls) if calls else []
            else:
                pipe = self.client.pipeline(transaction=False)
                for call in calls:  # the str name: redis-py routes EVAL by its one key then
                    pipe.execute_command("EVAL", *call[1:])
                replies = pipe.execute(raise_on_error=False)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return sum(replies)

    def read(
        self, lookups: Sequence[tuple[str, bytes]], windows: Sequence[WindowRead] = ()
    ) -> list[bytes | None]:
        """The stored value per (view, entity key), None when absent (or not a string, as MGET
        answers); then, per ``WindowRead``, per entity key, per tile: the last member of the key's
        sorted set scored at or before the tile, None when there is none. All in one round trip."""
        if not lookups and not windows:
            return []
        prefixes = {view: self._prefix(view) for view in {view for view, _ in lookups}}
        keys = [prefixes[view] + key for view, key in lookups]
        count = len(keys) + sum(len(window.keys) for window in windows)
        with self._unavailable_on_error(f"reading {count} keys"):
            if windows:
                return self._read_with_windows(keys, windows)
            if not self.settings.cluster:
                return self._mget(keys)
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            return [_string_or_none(reply) for reply in pipe.execute(raise_on_error=False)]

    def delete_view(self, view: str) -> int:
        """Remove every row of a view (e.g. after it is dropped), then its freshness and stream
        progress (granero.freshness.forget); returns how many row keys went."""
        from granero.freshness.forget import forget_view

        deleted = self._delete_rows(view)
        forget_view(self, view)
        return deleted

    def _delete_rows(self, view: str) -> int:
        deleted = 0
        with self._unavailable_on_error(f"deleting view {view!r}"):
            batch = []
            for key in self.scan_keys(self._prefix(view) + b"*"):
                batch.append(key)
                if len(batch) >= self.batch_size:
                    deleted, batch = deleted + self._unlink(batch), []
            deleted += self._unlink(batch)
        return deleted

    def scan_keys(self, pattern: bytes) -> Iterator[bytes]:
        """Every key matching the glob ``pattern`` (on every node of a Cluster), a page at a
        time, never blocking Redis as KEYS would."""
        with self._unavailable_on_error(f"scanning keys {pattern!r}"):
            yield from self.client.scan_iter(match=pattern, count=1000)

    def ping(self) -> None:
        """Raise OnlineStoreUnavailable unless Redis answers (for health checks)."""
        with self._unavailable_on_error("ping"):
            self.client.ping()

    def close(self) -> None:
        """Close every connection; for the store's owner, once no request is in flight (a
        later call connects again)."""
        with self._client_lock:
            client, self._client, self._script_sha = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # -- internals ----------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The redis-py client, built once on first use (by one thread, under the lock)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = _connect(self.settings)
                client = self._client
        return client

    def _forget_cluster_client(self, failed: Any) -> None:
        """Let the next call build a new Cluster client, unless another thread already did.
        The failed one is not closed: other threads may be using it (its sockets close when it
        is garbage-collected)."""
        with self._client_lock:
            if self._client is failed:
                self._client, self._script_sha = None, None

    def _prefix(self, view: str) -> bytes:
        if view not in self._prefixes:
            self._prefixes[view] = key_prefix(self.project, view)
        return self._prefixes[view]

    def _live_rows(
        self, keys: Sequence[bytes], values: Sequence[bytes], expire_at_ms: Sequence[int] | None
    ) -> list[tuple[bytes, bytes, bytes]]:
        if expire_at_ms is None or not self.settings.expire_keys:
            return [(k, v, b"") for k, v in zip(keys, values, strict=True)]
        now_ms = int(time.time() * 1000)
        rows = zip(keys, values, map(int, expire_at_ms), strict=True)
        return [(k, v, b"%d" % e) for k, v, e in rows if e > now_ms]

    def _write_chunk(self, prefix: bytes, rows: list[tuple[bytes, bytes, bytes]]) -> int:
        from redis.exceptions import NoScriptError

        results = self._run_script(prefix, rows)
        if any(isinstance(r, NoScriptError) for r in results):  # Redis restarted or flushed scripts
            self._script_sha = None
            results = self._run_script(prefix, rows)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return sum(results)

    def _run_script(self, prefix: bytes, rows: list[tuple[bytes, bytes, bytes]]) -> list[Any]:
        """Replies of the script calls writing ``rows`` (errors as values), one pipeline."""
        if self._script_sha is None:
            self._script_sha = self.client.script_load(WRITE_IF_NEWER)
        step = 1 if self.settings.cluster else KEYS_PER_CALL  # a cluster script keeps to one slot
        calls = [
            _script_call(self._script_sha, prefix, rows[i : i + step])
            for i in range(0, len(rows), step)
        ]
        if not self.settings.cluster:
            return self._run_packed(calls)
        pipe = self.client.pipeline(transaction=False)
        for call in calls:  # redis-py's cluster pipeline blocks evalsha(), not EVALSHA itself
            pipe.execute_command("EVALSHA", *call[1:])  # it routes by the command's str name
        return pipe.execute(raise_on_error=False)

    def _run_packed(self, calls: list[list[bytes]]) -> list[Any]:
        """Send commands packed here (redis-py's packing costs as much as Redis' work) on one
        pooled connection; see ``_send_packed``."""
        return self._send_packed(b"".join(map(pack, calls)), len(calls))

    def _send_packed(self, payload: bytes, replies: int) -> list[Any]:
        """The replies (errors as values) of a payload of ``replies`` commands, on one pooled
        connection; tried once more on a fresh one, as reads and writes are idempotent."""
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            return self._send_once(payload, replies)
        except (ConnectionError, TimeoutError):
            return self._send_once(payload, replies)

    def _send_once(self, payload: bytes, replies: int) -> list[Any]:
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command([payload])
            return read_replies(connection, replies)
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        """MGET packed here, like the writes: redis-py's packing looks at every argument in
        Python, a third of a 100-key lookup's cost in the client."""
        (reply,) = self._run_packed([[b"MGET", *keys]])
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _read_with_windows(self, keys: list[bytes], windows: Sequence[WindowRead]) -> list[Any]:
        """``read`` with window reads (``WINDOW_READ`` per entity key and tile): on a standalone
        server one payload packed here, the MGET first; on a Cluster one pipeline of GETs and
        ZRANGEs, which redis-py routes per key."""
        if not self.settings.cluster:
            payload = b"".join(window_reads(self._prefix(w.view), w.keys, w.tiles) for w in windows)
            count = sum(len(w.keys) * len(w.tiles) for w in windows)
            if keys:
                payload, count = pack([b"MGET", *keys]) + payload, count + 1
            replies = self._send_packed(payload, count)
            if keys and isinstance(replies[0], Exception):
                raise replies[0]
            return (replies[0] + last_members(replies[1:])) if keys else last_members(replies)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        for window in windows:
            prefix = self._prefix(window.view)
            for key in window.keys:
                for tile in window.tiles:
                    pipe.execute_command("ZRANGE", *window_read(prefix + key, tile)[1:])  # routed by
                    # the str name (a bytes name makes redis-py ask the server for the keys)
        replies = pipe.execute(raise_on_error=False)
        return [_string_or_none(reply) for reply in replies[: len(keys)]] + last_members(replies[len(keys) :])

    def _unlink(self, keys: list[bytes]) -> int:
        if not keys:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.unlink(key)
        return sum(pipe.execute())

    @contextlib.contextmanager
    def _unavailable_on_error(self, action: str) -> Iterator[None]:
        from redis.exceptions import RedisClusterException, RedisError

        client = self._client
        try:
            yield
        except (RedisError, RedisClusterException) as error:
            if self.settings.cluster and _is_connection_error(error):
                self._forget_cluster_client(client)
            raise OnlineStoreUnavailable(
                f"online store {self.settings.safe_url}: {action} failed: "
                f"{type(error).__name__}: {error}"
            ) from error


def _string_or_none(reply: Any) -> Any:
    """A Cluster GET's reply as MGET gives it on a standalone server: None for a key holding no
    string (WRONGTYPE, e.g. an aggregate view's sorted set under a view now plain); any other
    error raises."""
    if isinstance(reply, Exception):
        if str(reply).startswith("WRONGTYPE"):
            return None
        raise reply
    return reply


def _is_connection_error(error: Exception) -> bool:
    from redis.exceptions import ClusterError, ConnectionError, RedisClusterException, TimeoutError

    return isinstance(error, ConnectionError | TimeoutError | ClusterError | RedisClusterException)


def _script_call(sha: str, prefix: bytes, rows: list[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    keys = [prefix + key for key, _, _ in rows]
    arguments = [item for _, value, expire_at in rows for item in (value, expire_at)]
    return [b"EVALSHA", sha.encode(), b"%d" % len(rows), *keys, *arguments]


def _connect(settings: RedisSettings) -> Any:
    """A redis-py client that retries once, at once: enough to reconnect after a restart
    without stalling a request for seconds while Redis is down."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = settings.socket_timeout_seconds
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
    }
    client_class = redis.RedisCluster if settings.cluster else redis.Redis
    try:
        check_url(settings.url)
    except ValueError as error:
        raise ConfigError(f"online_store.url {error}") from None
    try:
        return client_class.from_url(settings.url, **options)
    except ValueError:  # redis-py's message may quote part of the password: never shown
        raise ConfigError(f"online_store.url {settings.safe_url}: redis-py cannot read it") from None
