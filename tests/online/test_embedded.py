"""The embedded server: started once per data folder, reused across processes, persistent across
restarts, never confused with a stranger's Redis, stopped cleanly."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from granero.online.embedded import EmbeddedRedis, EmbeddedRedisConfig
from granero.online.encoding import encode_entity_key
from granero.online.store import build_online_store
from granero.online.sync import write_rows

pytestmark = pytest.mark.redis


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "online")
    yield server
    server.stop()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_started_once_reused_by_another_process_and_stopped(embedded):
    code = (
        "from granero.online.embedded import EmbeddedRedis; "
        f"print(EmbeddedRedis({str(embedded.data_dir)!r}).start().port)"
    )
    started_elsewhere = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    server = embedded.start()  # the other process has exited; its daemonized server has not
    assert server.port == int(started_elsewhere.stdout)
    assert server.pid is not None and listening(server.port)
    assert embedded.start() == server
    assert embedded.stop() is True
    assert not listening(server.port)
    assert embedded.running() is None
    assert embedded.stop() is False


def test_rows_survive_a_restart_and_the_store_reconnects(embedded, defs):
    store = build_online_store(
        EmbeddedRedisConfig(data_dir=str(embedded.data_dir), expire_keys=False), "p"
    )
    view = defs.feature_views["stats"]
    row = {"driver_id": 5, "event_timestamp": datetime(2026, 1, 1, tzinfo=UTC), "trips": 3}
    assert write_rows(store, view, defs.join_keys(view), [row]) == 1
    first = embedded.running()
    assert embedded.stop() is True  # SHUTDOWN SAVE
    again = embedded.start()
    assert again.port == first.port and again.pid != first.pid
    assert (
        store.read([("stats", encode_entity_key(["int64"], [5]))])[0] is not None
    )  # same store object
    store.close()


def test_a_strangers_redis_on_the_recorded_port_is_not_reused(embedded, own_redis):
    embedded.data_dir.mkdir(parents=True)
    (embedded.data_dir / "redis.port").write_text(str(own_redis.port))
    assert embedded.running() is None
    server = embedded.start()
    assert server.port != own_redis.port
    assert (embedded.data_dir / "appendonly.aof").exists() or (
        embedded.data_dir / "appendonlydir"
    ).exists()


# -- lifetime: the last process done with the server stops it, unless it is kept --------------


def gone(pid: int | None) -> bool:
    """Whether a process has exited (a zombie nobody reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def embedded_config(embedded: EmbeddedRedis, **options) -> EmbeddedRedisConfig:
    return EmbeddedRedisConfig(data_dir=str(embedded.data_dir), expire_keys=False, **options)


def stopped(embedded: EmbeddedRedis, server) -> bool:
    return gone(server.pid) and not listening(server.port) and embedded.running() is None


KEY = encode_entity_key(["int64"], [5])


def write_one_row(store, defs) -> None:
    view = defs.feature_views["stats"]
    row = {"driver_id": 5, "event_timestamp": datetime(2026, 1, 1, tzinfo=UTC), "trips": 3}
    assert write_rows(store, view, defs.join_keys(view), [row]) == 1


def test_closing_the_only_store_stops_the_server_and_the_next_one_finds_the_rows(embedded, defs):
    store = build_online_store(embedded_config(embedded), "p")
    server = store.lease.server
    assert server.pid is not None and not gone(server.pid)
    write_one_row(store, defs)
    store.close()
    assert stopped(embedded, server)
    store.close()  # idempotent
    again = build_online_store(embedded_config(embedded), "p")  # started again, with the data
    assert again.lease.server.pid != server.pid
    assert again.read([("stats", KEY)])[0] is not None
    again.close()
    assert stopped(embedded, again.lease.server)


def test_the_server_runs_until_the_last_store_using_it_closes(embedded):
    first = build_online_store(embedded_config(embedded), "p")
    second = build_online_store(embedded_config(embedded), "p")
    assert first.lease.server == second.lease.server
    first.close()
    assert embedded.running() == first.lease.server
    assert second.read([("stats", KEY)]) == [None]
    second.close()
    assert stopped(embedded, first.lease.server)


def test_a_kept_server_outlives_its_stores_until_stopped(embedded):
    kept = build_online_store(embedded_config(embedded, keep_running=True), "p")
    kept.close()
    server = embedded.running()
    assert server == kept.lease.server
    assert embedded.stop() is True
    server = embedded.start(keep=True)  # `granero online start`
    plain = build_online_store(embedded_config(embedded), "p")
    plain.close()
    assert embedded.running() == server
    assert embedded.stop() is True and stopped(embedded, server)  # stop forgets `keep`
    plain = build_online_store(embedded_config(embedded), "p")
    plain.close()
    assert stopped(embedded, plain.lease.server)


USE_AND_EXIT = """
import os, signal, sys
from datetime import UTC, datetime
from granero.online.embedded import EmbeddedRedisConfig
from granero.online.store import build_online_store
from granero.online.sync import write_rows
from tests.online.conftest import define

defs = define()
view = defs.feature_views["stats"]
store = build_online_store(EmbeddedRedisConfig(data_dir=sys.argv[1], expire_keys=False), "p")
row = {"driver_id": 5, "event_timestamp": datetime(2026, 1, 1, tzinfo=UTC), "trips": 3}
write_rows(store, view, defs.join_keys(view), [row])
print(store.lease.server.pid, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def run_and_exit(embedded: EmbeddedRedis, how: str) -> tuple[subprocess.CompletedProcess, int]:
    from tests.conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-c", USE_AND_EXIT, str(embedded.data_dir), how],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    return done, int(done.stdout.split()[0])


def test_a_process_that_exits_without_closing_stops_its_server_and_keeps_the_rows(embedded):
    done, pid = run_and_exit(embedded, "exit")
    assert done.returncode == 0, done.stderr
    assert gone(pid) and embedded.running() is None
    store = build_online_store(embedded_config(embedded), "p")
    assert store.read([("stats", KEY)])[0] is not None
    store.close()


def test_a_server_left_by_a_killed_process_is_stopped_by_the_next_user(embedded):
    """SIGKILL runs no exit handler: the server stays, but its lease died with the process."""
    done, pid = run_and_exit(embedded, "kill")
    assert done.returncode == -9 and not gone(pid)
    store = build_online_store(embedded_config(embedded), "p")
    assert store.lease.server.pid == pid
    assert store.read([("stats", KEY)])[0] is not None
    store.close()
    assert gone(pid) and embedded.running() is None
