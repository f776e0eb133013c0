"""The jobs on a real Spark standalone cluster (master + one worker on loopback) via spark-submit.

Proves the jobs are cluster-ready: the submit's master is honoured, Delta's jars come from the
submit (``--jars`` from the local Maven cache, else ``--packages``),
executors run in their own JVM, and nothing needs the driver-side session of the tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from granero.feature_store import FeatureStore
from granero.offline.spark_session import DELTA_PACKAGE, delta_jars_conf, maven_repository
from tests.conftest import SHORT_LIVED_JVM, free_port, scaled

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def cluster_env() -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_JAVA_OPTS": SHORT_LIVED_JVM,  # the master's and worker's JVMs
    }


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def master_state(webui_port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=2) as response:
            return json.load(response)
    except OSError:
        return {"workers": [], "completedapps": []}


def alive_workers(webui_port: int) -> int:
    return sum(w["state"] == "ALIVE" for w in master_state(webui_port)["workers"])


def start(args: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 -- lives as long as the process
    return subprocess.Popen(
        [str(spark_home() / "bin" / "spark-class"), *args],
        env=cluster_env(),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def cluster(tmp_path) -> Iterator[tuple[str, int]]:
    """(``spark://127.0.0.1:<port>``, web UI port) of a fresh master with one 1-core worker."""
    port, webui = free_port(), free_port()
    processes = [
        start(
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(webui),
            ],
            tmp_path / "master.log",
        )
    ]
    try:
        wait_for(lambda: port_open(port), "the master")
        processes.append(
            start(
                [
                    "org.apache.spark.deploy.worker.Worker",
                    f"spark://127.0.0.1:{port}",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--host",
                    "127.0.0.1",
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(tmp_path / "work"),
                ],
                tmp_path / "worker.log",
            )
        )
        wait_for(lambda: alive_workers(webui) == 1, "the worker to register")
        yield f"spark://127.0.0.1:{port}", webui
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=scaled(30))


SUBMIT_CONF = {
    "spark.executor.memory": "512m",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.executor.extraJavaOptions": SHORT_LIVED_JVM,  # the driver's come from SPARK_SUBMIT_OPTS
    "spark.pyspark.driver.python": sys.executable,
    "spark.pyspark.python": "/nonexistent/python",  # executors must never need Python
}


def delta_args() -> list[str]:
    """The jars as the library's own sessions get them: no Ivy pass when ~/.m2 has them."""
    jars = delta_jars_conf(maven_repository()).get("spark.jars")
    return ["--jars", jars] if jars else ["--packages", DELTA_PACKAGE]


def submit(master: str, job: str, *args: str) -> subprocess.CompletedProcess:
    conf = [item for key, value in SUBMIT_CONF.items() for item in ("--conf", f"{key}={value}")]
    command = [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        master,
        *delta_args(),
        *conf,
        str(ROOT / "spark_jobs" / job),
        *args,
    ]
    return subprocess.run(command, env=cluster_env(), capture_output=True, text=True,
                          timeout=scaled(180))


def test_materialize_and_retrieve_on_a_standalone_cluster(cluster, spark, example_repo, tmp_path):
    master, webui = cluster
    FeatureStore(example_repo).apply()
    done = submit(
        master,
        "materialize.py",
        "--repo",
        str(example_repo),
        "--start",
        "2026-01-07T00:00:00Z",
        "--end",
        "2026-01-08T00:00:01Z",
        "--views",
        "route_stats,driver_hourly_stats",
        "--no-sync",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["view"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(results) == {"route_stats", "driver_hourly_stats"}
    assert [app["name"] for app in master_state(webui)["completedapps"]] == [
        "granero"
    ]  # ran on the cluster

    table = spark.read.format("delta").load(str(example_repo / "data" / "offline" / "route_stats"))
    source = spark.read.parquet(str(example_repo / "data" / "sources" / "route_stats"))
    in_window = source.where("window_end >= '2026-01-07' AND window_end < '2026-01-08 00:00:01'")
    assert table.count() == in_window.count() == results["route_stats"]["rows_written"] > 0
    assert table.columns[:3] == ["pickup_zone", "dropoff_zone", "event_timestamp"]

    out = tmp_path / "train"
    built = submit(
        master,
        "historical.py",
        "--repo",
        str(example_repo),
        "--entities",
        str(example_repo / "data" / "trips.parquet"),
        "--features",
        "route_stats:trips_last_hour,driver_hourly_stats:conv_rate",
        "--out",
        str(out),
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert json.loads(built.stdout)["table_versions"] == {
        "route_stats": 0,
        "driver_hourly_stats": 0,
    }
    training = spark.read.parquet(str(out))
    assert training.count() == 100
    assert training.where("route_stats__trips_last_hour IS NOT NULL").count() > 0
    assert len(master_state(webui)["completedapps"]) == 2
