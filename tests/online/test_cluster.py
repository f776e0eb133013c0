"""A real 3-node Redis Cluster on 127.0.0.1: sync from Spark, lookups, write-if-newer and
delete_view work across slots and nodes (pipelines split per node, no CROSSSLOT)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from granero.online.lookup import lookup
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import sync_view
from tests.conftest import free_port, scaled, start_redis
from tests.online.conftest import FRESH, NOW, request
from tests.online.test_sync import stats_frame

pytestmark = [pytest.mark.redis, pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    directory = tmp_path_factory.mktemp("cluster")
    servers = []
    try:
        for port in node_ports(3):
            servers.append(
                start_redis(
                    directory,
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                )
            )
        ports = [int(server.args[4]) for server in servers]
        create_cluster(ports)
        yield ports
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=scaled(10))


def node_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free and valid too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 <= 65535 and port not in ports and port_is_free(port + 10000):
            ports.append(port)
    return ports


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def create_cluster(ports: list[int]) -> None:
    cli = shutil.which("redis-cli") or str(
        Path(shutil.which("redis-server") or "").with_name("redis-cli")
    )
    nodes = [f"127.0.0.1:{p}" for p in ports]
    subprocess.run(
        [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=scaled(60),
    )
    deadline = time.monotonic() + scaled(30)
    while not all(redis.Redis(port=p).cluster("info")["cluster_state"] == "ok" for p in ports):
        if time.monotonic() > deadline:
            raise RuntimeError("the test cluster did not reach cluster_state:ok")
        time.sleep(0.05)


def test_sync_lookup_and_backfill_across_a_cluster(cluster_ports, spark, defs, project):
    settings = RedisSettings(
        f"redis://127.0.0.1:{cluster_ports[1]}/0", cluster=True, expire_keys=False
    )
    store = RedisStore(settings, project, batch_size=100)
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    frame = stats_frame(spark, [(d, FRESH, None, d / 10, d, "t") for d in range(300)]).repartition(
        2
    )
    assert sync_view(frame, settings, project, view, keys, batch_size=100) == 300
    per_node = [project_keys(p, project) for p in cluster_ports]  # not __freshness__:<project>
    assert sum(per_node) == 300 and min(per_node) > 50  # spread over every node's slots
    older = stats_frame(
        spark, [(d, FRESH - timedelta(minutes=1), None, -1.0, -1, "old") for d in range(300)]
    )
    assert sync_view(older, settings, project, view, keys) == 0
    rows = [{"driver_id": d} for d in range(0, 310, 7)]
    result = lookup(store, request(defs, "stats:trips", "stats:tier"), rows, NOW)
    assert result.to_dict()["stats__trips"] == [d if d < 300 else None for d in range(0, 310, 7)]
    assert store.delete_view("stats") == 300
    assert sum(project_keys(p, project) for p in cluster_ports) == 0
    store.close()


def project_keys(port: int, project: str) -> int:
    """Feature-row keys of ``project`` on one node (the freshness record lives outside them)."""
    return sum(1 for _ in redis.Redis(port=port).scan_iter(match=f"{project}:*"))
