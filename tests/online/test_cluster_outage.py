"""A Redis Cluster node killed (SIGKILL) and restarted, or frozen (SIGSTOP) and resumed, under
concurrent reads through one shared RedisStore: every error is OnlineStoreUnavailable, and every
thread is served again once the node is back (the failed Cluster client is replaced, never
closed under the other threads)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from granero.online.encoding import encode_entity_key
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import write_rows
from tests.conftest import start_redis
from tests.online.test_cluster import create_cluster, node_ports
from tests.online.test_redis_outage import THREADS, WAIT, Load, foreign_errors

pytestmark = [pytest.mark.redis, pytest.mark.slow]

DRIVERS = range(60)
"""Enough keys to land on every node's slots."""


class Cluster:
    def __init__(self, directory) -> None:
        self.directory, self.ports = directory, node_ports(3)
        self.nodes = {port: self._start(port) for port in self.ports}
        create_cluster(self.ports)

    def _start(self, port: int):
        return start_redis(self.directory, port, "--cluster-enabled", "yes",
                           "--cluster-config-file", f"nodes-{port}.conf")

    def restart(self, port: int) -> None:
        self.nodes[port] = self._start(port)  # same port and node file: it rejoins

    def stop(self) -> None:
        for node in self.nodes.values():
            node.send_signal(signal.SIGCONT)
            node.terminate()
            node.wait(WAIT)


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.stop()


def test_a_cluster_node_killed_restarted_and_frozen_is_only_ever_unavailable(cluster, defs):
    settings = RedisSettings(f"redis://127.0.0.1:{cluster.ports[0]}/0", cluster=True,
                             socket_timeout_seconds=0.3, expire_keys=False)
    store = RedisStore(settings, "cluster_outage")
    view = defs.feature_views["stats"]
    event = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"driver_id": d, "event_timestamp": event, "trips": d} for d in DRIVERS]
    assert write_rows(store, view, defs.join_keys(view), rows) == len(rows)
    keys = [("stats", encode_entity_key(["int64"], [d])) for d in DRIVERS]
    victim = cluster.nodes[cluster.ports[2]]
    with Load([lambda: store.read(keys)] * THREADS) as load:
        load.wait_each(0, 3, ok=True)
        killed = load.mark()
        victim.kill()
        victim.wait(WAIT)
        load.wait_each(killed, 3, ok=False)
        cluster.restart(cluster.ports[2])
        load.wait_each(load.mark(), 3, ok=True)
        frozen = load.mark()
        cluster.nodes[cluster.ports[1]].send_signal(signal.SIGSTOP)
        try:
            load.wait_each(frozen, 2, ok=False)
        finally:
            cluster.nodes[cluster.ports[1]].send_signal(signal.SIGCONT)
        load.wait_each(load.mark(), 3, ok=True)
    store.close()
    assert foreign_errors(load.outcomes) == []
    assert load.last_errors() == [None] * THREADS
