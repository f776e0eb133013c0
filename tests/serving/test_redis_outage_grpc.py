"""A real gRPC server under concurrent load while its real redis-server is killed and restarted,
or frozen and resumed: every answer is OK or UNAVAILABLE (never INTERNAL or UNKNOWN), and every
client thread is served again once Redis is back, without restarting the server."""

from __future__ import annotations

import signal

import pytest

from granero.errors import OnlineStoreUnavailable
from granero.feature_store import FeatureStore
from granero.serving.client import Client
from granero.serving.config import ServingConfig
from granero.serving.server import build_server
from tests.online.conftest import RedisServer
from tests.online.test_redis_outage import THREADS, Load, kill_and_restart
from tests.serving.conftest import write_all_rows, write_repo

pytestmark = pytest.mark.redis

TRIPS = ["driver_stats:trips"]


def statuses(load: Load) -> set[str]:
    """The gRPC status of every outcome (the client raises OnlineStoreUnavailable for both
    UNAVAILABLE and DEADLINE_EXCEEDED, so the code is read from its message)."""
    found = set()
    for outcome in load.outcomes:
        error = outcome.error
        if error is None:
            found.add("OK")
        elif isinstance(error, OnlineStoreUnavailable) and ": UNAVAILABLE: " in str(error):
            found.add("UNAVAILABLE")
        else:
            found.add(f"{type(error).__name__}: {error}")
    return found


@pytest.fixture
def served(tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    repo = write_repo(tmp_path / "repo", redis.url, project="outage_grpc")
    config = (repo / "feature_store.yaml").read_text()
    (repo / "feature_store.yaml").write_text(
        config.replace("expire_keys: false", "expire_keys: false, socket_timeout_seconds: 0.3"))
    try:
        with FeatureStore(repo) as store:
            store.apply()
            write_all_rows(store)
            with build_server(store, ServingConfig(port=0, max_workers=8)) as handle:
                yield redis, handle.address
    finally:
        redis.stop()


def lookups(address: str) -> tuple[list[Client], list]:
    clients = [Client(address, timeout=60) for _ in range(THREADS)]
    return clients, [
        (lambda c=c: c.get_online_features([{"driver_id": d} for d in range(1, 21)], TRIPS))
        for c in clients
    ]


def test_redis_killed_and_frozen_under_grpc_load_is_only_ever_unavailable(served):
    redis, address = served
    clients, requests = lookups(address)
    try:
        with Load(requests) as load:
            kill_and_restart(redis, load)
            frozen = load.mark()
            redis.process.send_signal(signal.SIGSTOP)
            try:
                load.wait_each(frozen, 2, ok=False)
            finally:
                redis.process.send_signal(signal.SIGCONT)
            load.wait_each(load.mark(), 3, ok=True)
    finally:
        for client in clients:
            client.close()
    assert statuses(load) == {"OK", "UNAVAILABLE"}
    assert load.last_errors() == [None] * THREADS
