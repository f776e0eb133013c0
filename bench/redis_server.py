"""A private redis-server for one benchmark run: 127.0.0.1, a free port, no persistence."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

DEBIAN_REDIS = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    found = DEBIAN_REDIS if Path(DEBIAN_REDIS).exists() else shutil.which("redis-server")
    if not found:
        raise SystemExit("redis-server not found: apt-get install redis-server")
    return found


def redis_version() -> str:
    out = subprocess.run([redis_binary(), "--version"], capture_output=True, text=True).stdout
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), out.strip())


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[int]:
    """Start redis-server, yield its port once it answers PING, and always stop it."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--databases",
            "4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_ping(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_ping(port: int, process: subprocess.Popen, timeout_s: float = 10) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
    finally:
        client.close()
