"""Running the measuring processes: a side's command (JSON in, JSON out) and the load generator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FEAST_BIN = BENCH / ".venv-feast" / "bin"
SIDE_TIMEOUT_S = 3600


def _run(argv: list[str], args: dict, timeout: float, what: str, env: dict | None = None) -> dict:
    done = subprocess.run(argv, input=json.dumps(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def side(system: str, command: str, args: dict) -> dict:
    """One command of granero_side (project venv) or feast_side (Feast venv)."""
    python = str(FEAST_BIN / "python") if system == "feast" else sys.executable
    argv = [python, "-m", f"bench.{system}_side", command]
    return _run(argv, args, SIDE_TIMEOUT_S, f"{system} {command}")


def load(spec: dict, fast_redis_client: bool = False) -> dict:
    """One bounded load (bench/load.py) from a separate process.

    With ``fast_redis_client`` it runs on the Feast venv's interpreter, whose redis-py has the
    hiredis parser: the raw-Redis baseline then measures Redis, not a pure-Python reply parser.
    load.py imports only the standard library and redis for that target.
    """
    fast = fast_redis_client and (FEAST_BIN / "python").exists()
    python = str(FEAST_BIN / "python") if fast else sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT)} if fast else None
    return _run([python, "-m", "bench.load"], spec, spec["seconds"] + 300, "load generator", env)
