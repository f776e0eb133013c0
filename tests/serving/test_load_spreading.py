"""One ``Client`` spreads its calls over the worker processes of ``granero serve --workers 2``.

grpc shares one TCP connection between a process's channels with equal options, and the kernel
picks a worker per connection (SO_REUSEPORT), so a client with one connection loads one worker.
Each worker counts what it answered on its own metrics port (metrics_port + index).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from granero.errors import InvalidRequest
from granero.serving.client import DEFAULT_CONNECTIONS, Client

pytestmark = pytest.mark.redis

CONNECTIONS = 16
"""SO_REUSEPORT hashes each connection to a worker: all 16 on one of 2 has odds 2**-15."""
REQUESTS = 4 * CONNECTIONS
ANSWERED = re.compile(
    r'^granero_serving_requests_total\{code="OK",method="GetOnlineFeatures"\} (\S+)$', re.M)


def two_free_ports() -> int:
    """A port P with P + 1 also free (worker i serves metrics on P + i)."""
    for _ in range(100):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


def answered_by(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        found = ANSWERED.search(reply.read().decode())
    return float(found.group(1)) if found else 0.0


def test_one_client_loads_every_worker(serving_repo, store):
    metrics_port = two_free_ports()
    granero = str(Path(sys.executable).parent / "granero")
    command = [granero, "serve", "-r", str(serving_repo), "--port", "0", "--workers", "2",
               "--metrics-port", str(metrics_port), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(process.stdout.readline())
        with Client(info["address"], timeout=30, connections=CONNECTIONS) as client:
            for _ in range(REQUESTS):
                result = client.get_online_features({"driver_id": [1]}, ["driver_stats:trips"])
                assert result.to_dict() == {"driver_stats__trips": [12]}
        per_worker = [answered_by(metrics_port + index) for index in range(2)]
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert sum(per_worker) == REQUESTS
    assert min(per_worker) > 0, f"one worker took every request: {per_worker}"


def test_calls_take_the_connections_in_turn(server):
    with Client(server.address, connections=3) as spread:
        assert spread.connections == 3
        used = [id(next(spread._stubs)) for _ in range(6)]
    assert used[:3] == used[3:] and len(set(used)) == 3
    assert Client(server.address).connections == DEFAULT_CONNECTIONS


@pytest.mark.parametrize("connections", [0, -1, 1.5, True, "2"])
def test_connections_must_be_a_positive_whole_number(connections):
    with pytest.raises(InvalidRequest, match="connections must be a whole number >= 1"):
        Client("127.0.0.1:1", connections=connections)
