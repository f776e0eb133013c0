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
