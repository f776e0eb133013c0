"""The embedded server's lifetime through the FeatureStore and the CLI: a store or a command that
started it stops it when done (close, ``with`` exit, process exit), and the next command, in
another process, finds the rows it synced (saved on stop, loaded on start)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from granero.feature_store import FeatureStore
from granero.online.embedded import EmbeddedRedis
from tests.conftest import DATA_END, scaled
from tests.online.test_embedded import gone, listening

pytestmark = pytest.mark.redis

EMBEDDED = "online_store: {type: embedded, expire_keys: false}\n"


def embedded_repo(repo: Path) -> Path:
    config = (repo / "feature_store.yaml").read_text()
    online = re.compile(r"^online_store:.*?(?=^\S)", re.S | re.M)
    (repo / "feature_store.yaml").write_text(online.sub(EMBEDDED, config))
    return repo


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text("project: p\n" + EMBEDDED)
    return repo


def test_close_and_with_exit_stop_the_server_the_store_started(small_repo):
    data_dir = EmbeddedRedis(small_repo / "data" / "online")
    with FeatureStore(small_repo) as store:
        server = store.online_store.lease.server
        assert data_dir.running() == server
    assert gone(server.pid) and not listening(server.port)
    store = FeatureStore(small_repo)
    again = store.online_store.lease.server
    store.close()
    assert gone(again.pid) and data_dir.running() is None


def test_stop_online_reports_the_server_it_stopped(small_repo):
    store = FeatureStore(small_repo)
    server = store.online_store.lease.server
    assert store.stop_online() is True and gone(server.pid)
    assert store.stop_online() is False


def servers_in(data_dir: Path) -> list[int]:
    """Live redis-server processes working in ``data_dir`` (the embedded one chdirs there)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if "redis-server" in (proc / "comm").read_text() and (proc / "cwd").resolve() == data_dir:
                found.append(int(proc.name))
        except OSError:
            continue
    return [pid for pid in found if not gone(pid)]


def granero(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "granero.cli.main", *args, "--repo", str(repo)],
        capture_output=True, text=True, timeout=scaled(600),
    )


READ_BACK = f"""
import json, sys
from datetime import datetime
from granero.feature_store import FeatureStore
with FeatureStore(sys.argv[1]) as store:
    result = store.get_online_features([{{"driver_id": 1001}}], ["driver_hourly_stats:conv_rate"],
                                       now=datetime.fromisoformat({DATA_END.isoformat()!r}))
    print(json.dumps(result.to_dict(), default=str))
"""


@pytest.mark.spark
@pytest.mark.slow
def test_materialize_then_get_online_in_separate_processes_leaves_no_server(example_repo):
    repo = embedded_repo(example_repo)
    server = EmbeddedRedis(repo / "data" / "online")
    assert granero(repo, "apply").returncode == 0
    start = (DATA_END.replace(day=DATA_END.day - 2)).isoformat()
    # the view read back below: the lifetime under test is the command's, not the other views'
    done = granero(repo, "materialize", start, DATA_END.isoformat(), "--views", "driver_hourly_stats")
    assert done.returncode == 0, done.stderr[-2000:]
    assert servers_in(server.data_dir) == [] and server.running() is None  # saved and stopped
    read = subprocess.run([sys.executable, "-c", READ_BACK, str(repo)],
                          capture_output=True, text=True, timeout=scaled(120))
    assert read.returncode == 0, read.stderr[-2000:]
    values = json.loads(read.stdout)
    assert values["driver_hourly_stats__conv_rate"][0] is not None
    assert servers_in(server.data_dir) == []


def test_online_start_keeps_the_server_past_every_command_until_online_stop(small_repo):
    data_dir = EmbeddedRedis(small_repo / "data" / "online")
    started = granero(small_repo, "online", "start", "--json")
    assert started.returncode == 0, started.stderr
    port = json.loads(started.stdout)["port"]
    with FeatureStore(small_repo) as store:
        assert store.online_store.lease.server.port == port
    assert data_dir.running() is not None and data_dir.running().port == port
    stopped = granero(small_repo, "online", "stop")
    assert "stopped the embedded online store" in stopped.stdout
    assert data_dir.running() is None and not listening(port)
