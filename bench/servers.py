"""Starting and stopping the servers under load: ``feast serve`` and ``granero serve``.

Each runs with its defaults except the address (127.0.0.1 and a free port); its output goes to a
log file, from which Feast's worker restarts are counted afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunningServer:
    address: str
    log: Path


def feast_command(feast_bin: Path, repo: Path, port: int, workers: int) -> list[str]:
    address = ["--host", "127.0.0.1", "--port", str(port)]
    return [str(feast_bin), "-c", str(repo), "serve", *address, "--workers", str(workers)]


def granero_command(granero_bin: Path, repo: Path, port: int, workers: int) -> list[str]:
    address = ["--host", "127.0.0.1", "--port", str(port)]
    return [str(granero_bin), "serve", "--repo", str(repo), *address, "--workers", str(workers)]


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path,
            ready: Callable[[int], bool]) -> Iterator[RunningServer]:
    """Run ``command`` until the block ends; wait until ``ready(port)`` first."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                   start_new_session=True)
    try:
        _wait(process, port, ready, log)
        yield RunningServer(f"127.0.0.1:{port}", log)
    finally:
        _stop(process)


def _wait(process: subprocess.Popen, port: int, ready: Callable[[int], bool], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready(port):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"server {process.args!r} did not start:\n{tail}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server, which drains and stops its workers; if it has not exited within
    30 s, SIGKILL to the process group it leads (its own session: gunicorn's workers too)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def http_ready(port: int) -> bool:
    """Feast answers GET /health with 200 once its worker has loaded the registry."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/health")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def grpc_ready(port: int) -> bool:
    """Granero's server answers GetServerInfo once it has loaded the registry."""
    import grpc

    from granero.serving.v1 import serving_pb2, serving_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            stub = serving_pb2_grpc.FeatureServingStub(channel)
            stub.GetServerInfo(serving_pb2.GetServerInfoRequest(), timeout=2)
            return True
        except grpc.RpcError:
            return False


def feast_worker_restarts(log: Path) -> int:
    """Gunicorn logs "Booting worker" per worker start: each one after the first is a restart."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return max(0, text.count("Booting worker") - 1)
