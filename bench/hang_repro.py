"""Hunting a stuck serving request (issue 11, item 9): ``python -m bench.hang_repro REPO [ROUNDS]``.

Each round starts a fresh ``granero serve --workers 2`` on REPO (a repo the bench materialized),
waits until it answers, and runs the bench's warm-up pattern against it: 8 connections from 2
load processes, each sending its warm-up requests then a few more (bench/load.py, 10 s deadline
per request). Every worker runs with ``faulthandler`` registered on SIGUSR1 (a sitecustomize on
PYTHONPATH); when a round sees a request fail, both workers are told to dump every thread's
stack into the round's log, so a hang leaves its evidence. Bounded: ROUNDS rounds (default 20),
each at most ~60 s. Prints one JSON line per round and a summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import run as run_load
from bench.redis_server import free_port
from bench.repos import feature_refs
from bench.scales import SCALES
from bench.servers import grpc_ready

ROOT = Path(__file__).resolve().parents[1]
SITECUSTOMIZE = "import faulthandler, signal\nfaulthandler.register(signal.SIGUSR1, all_threads=True)\n"


def _round(repo: Path, logs: Path, index: int, hooks: Path) -> dict:
    port, log = free_port(), logs / f"round-{index}.log"
    env = {**os.environ, "PYTHONPATH": f"{hooks}:{os.environ.get('PYTHONPATH', '')}"}
    command = [str(ROOT / ".venv" / "bin" / "granero"), "serve", "--repo", str(repo), "--host",
               "127.0.0.1", "--port", str(port), "--workers", "2", "--json"]
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=out, text=True, env=env,
                                  start_new_session=True)
    try:
        pids = json.loads(server.stdout.readline())["pids"]  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while not grpc_ready(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        spec = {"target": "grpc", "address": f"127.0.0.1:{port}", "entities": 10_000,
                "features": feature_refs(SCALES["small"]), "batch": 1, "count": 80,
                "seconds": 20, "concurrency": 8, "processes": 2, "seed": index}
        summary = run_load(spec)
        failed = summary["errors"] + summary.get("warmup_errors", 0)
        if failed:
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)
            time.sleep(1)
        return {"round": index, "failed": failed, "p99_ms": summary.get("p99_ms"),
                "errors": summary["first_errors"] + summary.get("first_warmup_errors", []),
                "log": str(log)}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def main(repo: str, rounds: str = "20") -> None:
    logs = Path(tempfile.mkdtemp(prefix="granero-hang-"))
    hooks = logs / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    results = []
    for index in range(int(rounds)):
        results.append(_round(Path(repo), logs, index, hooks))
        print(json.dumps(results[-1]), flush=True)
    hung = [r for r in results if r["failed"]]
    print(json.dumps({"rounds": len(results), "rounds_with_failures": len(hung),
                      "logs": str(logs)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
