"""Multi-process serving: ``workers`` processes share one port, so throughput scales past one GIL.

Each worker is a fresh interpreter (``python -m granero.serving.workers``) that opens the repo
and runs ``server.serve``; all bind the same address with SO_REUSEPORT and the kernel spreads
incoming connections over them. Balancing is per connection: one channel (one HTTP/2
connection) stays on one worker, so spread load over several channels.

The parent only supervises. It waits until every worker reported ready (one JSON line on the
worker's stdout), restarts a worker that dies later, and on SIGTERM or SIGINT forwards SIGTERM
so each worker drains as a single server does. A worker that fails to start stops them all.
Metrics are per worker: with ``metrics_port`` P, worker i serves /metrics on P + i (0 stays 0,
any free port), so Prometheus scrapes each and sums.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from granero.errors import ConfigError, GraneroError
from granero.process_exit import exit_without_teardown
from granero.serving.config import ServingConfig

log = logging.getLogger(__name__)

STOP_MARGIN_SECONDS = 10.0
"""How long past ``drain_seconds`` a worker may take to exit before it is killed."""


def serve_workers(
    repo: Path,
    config: ServingConfig,
    *,
    log_level: str = "INFO",
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Run ``config.workers`` serving processes until SIGTERM or SIGINT, then drain them all.

    ``on_ready`` gets the first worker's info (address, port, project, registry_version) plus
    ``pids``. Raises GraneroError when a worker fails to start or to stop cleanly.
    """
    config = _with_shared_port(config)
    stopping = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in signals}
    workers: list[subprocess.Popen] = []
    try:
        for index in range(config.workers):
            workers.append(_start(repo, config, index, log_level))
        infos = [_await_ready(worker, index) for index, worker in enumerate(workers)]
        if on_ready is not None:
            on_ready({**infos[0], "pids": [w.pid for w in workers]})
        _supervise(workers, stopping, lambda i: _start(repo, config, i, log_level))
    finally:
        failed = _stop_all(workers, config.drain_seconds)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise GraneroError(f"serving workers did not stop cleanly (index: exit code {failed}); "
                           "see their log")


def _with_shared_port(config: ServingConfig) -> ServingConfig:
    """Port 0 means "any free port", but all workers must share one: pick it here."""
    if config.port != 0:
        return config
    with socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET) as sock:
        sock.bind((config.host.strip("[]"), 0))
        return config.model_copy(update={"port": sock.getsockname()[1]})


def _start(repo: Path, config: ServingConfig, index: int, log_level: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "granero.serving.workers", str(repo),
               worker_config(config, index).model_dump_json(), log_level]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def worker_config(config: ServingConfig, index: int) -> ServingConfig:
    """Worker ``index``'s config: its own metrics port (P + index), the shared gRPC port."""
    if not config.metrics_port:
        return config
    return config.model_copy(update={"metrics_port": config.metrics_port + index})


def _await_ready(worker: subprocess.Popen, index: int) -> dict[str, Any]:
    line = worker.stdout.readline() if worker.stdout else ""
    if not line:
        code = worker.wait()
        failure = ConfigError if code == ConfigError.exit_code else GraneroError  # e.g. port in use
        raise failure(f"serving worker {index} (pid {worker.pid}) failed to start "
                      f"(exit code {code}); see its log above")
    return json.loads(line)


def _supervise(workers: list[subprocess.Popen], stopping: threading.Event,
               start: Callable[[int], subprocess.Popen]) -> None:
    """Until asked to stop, replace any worker that exited (crashed) by a fresh one."""
    while not stopping.wait(0.5):
        for index, worker in enumerate(workers):
            if worker.poll() is not None and not stopping.is_set():
                log.warning("serving worker %d (pid %d) exited with code %s; restarting",
                            index, worker.pid, worker.returncode)
                workers[index] = start(index)
                _await_ready(workers[index], index)


def _stop_all(workers: list[subprocess.Popen], drain_seconds: float) -> dict[int, int]:
    """SIGTERM every worker (each drains), wait, kill stragglers; exit codes of those failed."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    failed = {}
    for index, worker in enumerate(workers):
        try:
            code = worker.wait(drain_seconds + STOP_MARGIN_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            code = worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
        if code != 0:
            failed[index] = code
    return failed


def handle_info(handle: Any) -> dict[str, Any]:
    """What a started server announces: address, ports, project and registry version."""
    version = handle.servicer.registry.current()
    return {"address": handle.address, "port": handle.port, "metrics_port": handle.metrics_port,
            "project": version.project, "registry_version": version.version}


def _worker_main(repo: str, config_json: str, log_level: str) -> int:
    from granero.feature_store import FeatureStore
    from granero.serving.logs import configure_json_logging
    from granero.serving.server import serve

    configure_json_logging(log_level)
    config = ServingConfig.model_validate_json(config_json)
    try:
        with FeatureStore(Path(repo)) as store:
            serve(store, config, on_ready=lambda h: print(json.dumps(handle_info(h)), flush=True))
    except GraneroError as error:
        log.error("serving worker failed: %s", error)
        return error.exit_code
    return 0


if __name__ == "__main__":
    exit_without_teardown(_worker_main(*sys.argv[1:]))  # drained, store closed
