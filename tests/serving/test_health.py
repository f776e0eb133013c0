"""Health follows the online store: a real redis-server is killed and restarted, frozen with
SIGSTOP and thawed, and the standard health service (what the chart's readiness probe asks)
goes NOT_SERVING and back. Changes are awaited through health's Watch stream, bounded by a
deadline: no sleeps. Hysteresis is checked against an oracle on random ping histories."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.errors import GraneroError
from granero.feature_store import FeatureStore
from granero.serving.config import ServingConfig
from granero.serving.health import LIVENESS_SERVICE as LIVENESS
from granero.serving.health import Hysteresis
from granero.serving.server import ServerHandle, build_server
from granero.serving.servicer import SERVICE_NAME
from tests.conftest import free_port, scaled, start_redis
from tests.serving.conftest import write_repo

pytestmark = pytest.mark.redis

WAIT = scaled(20)
"""Seconds: an upper bound for what should come within a few health checks, never a sleep."""
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
FAST_HEALTH = {"health_check_seconds": 0.05, "health_failures": 2, "health_successes": 2}


# -- hysteresis, against an oracle ----------------------------------------------------------------


def oracle(history: list[bool], failures: int, successes: int) -> bool:
    """Healthy unless the latest window of ``failures`` failed pings in a row is more recent
    than the latest window of ``successes`` good ones in a row."""
    def last_window(ok: bool, size: int) -> int:
        ends = [i for i in range(size - 1, len(history))
                if all(h is ok for h in history[i - size + 1 : i + 1])]
        return max(ends, default=-1)

    return last_window(False, failures) <= last_window(True, successes)


@settings(max_examples=500, derandomize=True, database=None)
@given(history=st.lists(st.booleans(), max_size=30), failures=st.integers(1, 4),
       successes=st.integers(1, 4))
def test_hysteresis_turns_only_after_enough_checks_in_a_row(history, failures, successes):
    state = Hysteresis(failures, successes)
    for index, ok in enumerate(history):
        state.observe(ok)
        assert state.healthy == oracle(history[: index + 1], failures, successes)


# -- a real redis-server, killed, restarted, frozen ------------------------------------------------


class Redis:
    """A redis-server of this test on a fixed port, which the test stops and starts."""

    def __init__(self, directory: Any) -> None:
        self.directory, self.port = directory, free_port()
        self.process = start_redis(directory, self.port)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(WAIT)

    def restart(self) -> None:
        self.process = start_redis(self.directory, self.port)


@pytest.fixture
def redis(tmp_path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    yield server
    server.process.send_signal(signal.SIGCONT)  # a frozen one must hear SIGTERM
    server.process.terminate()
    server.process.wait(WAIT)


@pytest.fixture
def served(tmp_path, redis) -> Iterator[ServerHandle]:
    repo = write_repo(tmp_path / "repo", f"redis://127.0.0.1:{redis.port}/0", project="health")
    (repo / "feature_store.yaml").write_text(
        f"project: health\nonline_store: {{type: redis, url: 'redis://127.0.0.1:{redis.port}/0', "
        "socket_timeout_seconds: 0.2}\n")
    with FeatureStore(repo) as store:
        store.apply()
        with build_server(store, ServingConfig(port=0, **FAST_HEALTH)) as handle:
            yield handle


def wait_for(handle: ServerHandle, status: int) -> None:
    """Return once health (of the server and of FeatureServing) reports ``status``."""
    with grpc.insecure_channel(handle.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            stream = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=WAIT)
            try:
                next(r for r in stream if r.status == status)
            finally:
                stream.cancel()


def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds, failing the test after WAIT seconds."""
    deadline, tick = time.monotonic() + WAIT, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {WAIT} s")
        tick.wait(0.01)


def gauge(handle: ServerHandle) -> float | None:
    return handle.servicer.metrics.registry.get_sample_value("granero_serving_healthy")


def test_the_gauge_changes_before_the_status_a_probe_reads():
    """Whenever a status is set, the gauge already says the same (one thread turns both)."""
    from grpc_health.v1 import health

    from granero.serving.health import StoreHealth

    gauge: list[bool] = []
    seen: list[tuple[int, bool]] = []

    class Recording(health.HealthServicer):
        def set(self, service: str, status: int) -> None:
            seen.append((status, gauge[-1]))
            super().set(service, status)

    down = threading.Event()

    def ping() -> None:
        if down.is_set():
            raise GraneroError("down")

    checker = StoreHealth(ping, Recording(), [""], every_seconds=0.001, failures=1, successes=1,
                          on_change=gauge.append).start()
    try:
        down.set()
        until(lambda: any(status == NOT_SERVING for status, _ in seen))
    finally:
        checker.stop()
    assert seen[0] == (SERVING, True)
    assert all((status == SERVING) == healthy for status, healthy in seen)


def test_health_is_serving_while_redis_answers(served):
    wait_for(served, SERVING)
    assert gauge(served) == 1


def test_health_goes_not_serving_when_redis_dies_and_back_when_it_returns(served, redis):
    wait_for(served, SERVING)
    redis.kill()
    wait_for(served, NOT_SERVING)
    assert gauge(served) == 0
    redis.restart()
    wait_for(served, SERVING)
    assert gauge(served) == 1


def test_health_goes_not_serving_while_redis_is_frozen(served, redis):
    wait_for(served, SERVING)
    redis.process.send_signal(signal.SIGSTOP)
    wait_for(served, NOT_SERVING)
    redis.process.send_signal(signal.SIGCONT)
    wait_for(served, SERVING)


def test_a_server_started_without_redis_is_not_serving_from_the_start(tmp_path, redis):
    repo = write_repo(tmp_path / "repo", f"redis://127.0.0.1:{redis.port}/0", project="health")
    with FeatureStore(repo) as store:
        store.apply()
        redis.kill()
        with build_server(store, ServingConfig(port=0, **FAST_HEALTH)) as handle:
            check = handle.health.Check(health_pb2.HealthCheckRequest(service=""), None)
            assert check.status == NOT_SERVING and gauge(handle) == 0
            alive = handle.health.Check(health_pb2.HealthCheckRequest(service=LIVENESS), None)
            assert alive.status == SERVING  # liveness probes restart no pod for Redis' sake
            redis.restart()
            wait_for(handle, SERVING)


def test_draining_stays_not_serving_whatever_the_pings_say(served):
    wait_for(served, SERVING)
    served.stop(grace=0)
    checks = served.store_health.checks
    until(lambda: served.store_health.checks >= checks + 3)  # three more pings, all good
    assert served.store_health.state.healthy
    request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    assert served.health.Check(request, None).status == NOT_SERVING
