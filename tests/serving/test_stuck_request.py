"""One request stuck in the server (issue 11, item 9: a bench warm-up request ran past its 10 s
deadline) neither hangs a ``Client`` nor aborts a bench load run: it fails at its deadline, and
the calls after it are answered (the client's next call goes out on another connection)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from bench.load import GrpcTarget, Selection, drive

from granero.errors import OnlineStoreUnavailable
from granero.serving.client import Client
from granero.serving.config import ServingConfig
from granero.serving.server import build_server
from granero.serving.servicer import FeatureServingServicer
from tests.conftest import scaled

pytestmark = pytest.mark.redis

TRIPS = ["driver_stats:trips"]


class StuckOnce(FeatureServingServicer):
    """The first lookup hangs until the test lets it go; every other one is answered."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.stuck, self.release = threading.Event(), threading.Event()
        self._first = threading.Lock()

    def lookup(self, readers: Any, entities: Any) -> Any:
        if self._first.acquire(blocking=False):
            self.stuck.set()
            self.release.wait(scaled(60))
        return super().lookup(readers, entities)


@pytest.fixture
def stuck_server(store):
    config = ServingConfig(port=0, max_workers=4)
    servicer = StuckOnce(store, config)
    with build_server(store, config, servicer=servicer) as handle:
        yield handle, servicer
        servicer.release.set()


def test_a_stuck_call_fails_at_its_deadline_and_the_next_one_is_answered(stuck_server):
    handle, servicer = stuck_server
    with Client(handle.address, timeout=scaled(2), connections=2) as client:
        with pytest.raises(OnlineStoreUnavailable, match="DEADLINE_EXCEEDED"):
            client.get_online_features({"driver_id": [1]}, TRIPS)
        assert servicer.stuck.is_set()
        result = client.get_online_features({"driver_id": [1]}, TRIPS)  # still held server-side
    assert result.to_dict() == {"driver_stats__trips": [12]}


def test_a_stuck_warm_up_request_is_counted_and_the_load_run_goes_on(stuck_server):
    handle, servicer = stuck_server
    target = GrpcTarget(handle.address, Selection(TRIPS, None, 1, "driver_id"),
                        timeout=scaled(2))
    spec = {"entities": 2, "batch": 1, "seconds": scaled(60)}
    seeds, count = [1, 2], 20
    measured = drive(target, spec, seeds, count, threading.Barrier(len(seeds), timeout=scaled(60)))
    assert servicer.stuck.is_set()
    assert len(measured["warmup_errors"]) == 1
    assert "DEADLINE_EXCEEDED" in measured["warmup_errors"][0]
    assert measured["errors"] == []
    assert len(measured["latencies_ms"]) == count
