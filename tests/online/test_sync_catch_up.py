"""A sync that fails or is killed after its table write is caught up by the next run.

Real parts throughout: a redis-server of the test's own, stopped (or frozen with SIGSTOP) while a
materialization runs, Delta tables, Spark, and the CLI as a real subprocess killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from granero import Entity, FeatureView, Field, FileSource
from granero.cli.main import app
from granero.definitions import compile_definitions
from granero.feature_store import FeatureStore
from granero.offline.materialize import EPOCH
from granero.registry import Interval
from tests.conftest import scaled
from tests.online.conftest import RedisServer

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ENTITIES = 40
rider = Entity(join_keys={"rider_id": "int64"})


def write_source(repo: Path, days: int, riders: int = ENTITIES) -> None:
    """Per rider one row a day for ``days`` days; each day's value differs from the day before."""
    rows = [
        {"rider_id": r, "ts": T0 + d * DAY + timedelta(hours=r % 24), "score": float(r + 100 * d)}
        for d in range(days)
        for r in range(riders)
    ]
    (repo / "source").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(repo / "source" / "part-0.parquet", coerce_timestamps="us")


def make_repo(
    repo: Path, redis_url: str, socket_timeout: float = 1.0, offline: str = "delta"
) -> FeatureStore:
    """A repo folder (feature_store.yaml, registry) whose online store is ``redis_url``."""
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: catchup\nregistry: {path: registry}\n"
        f"offline_store: {{type: {offline}, path: offline}}\n"
        f"online_store: {{type: redis, url: '{redis_url}', expire_keys: false, "
        f"socket_timeout_seconds: {socket_timeout}}}\n"
        "spark: {master: 'local[2]', conf: {spark.sql.shuffle.partitions: '2'}}\n"
    )
    view = FeatureView(
        entities=[rider],
        source=FileSource(path=str(repo / "source"), timestamp_field="ts"),
        ttl="30d",
        features=[Field(name="score", dtype="float64")],
    )
    store = FeatureStore(repo)
    store.registry.write_version("catchup", compile_definitions([("rider", rider), ("scores", view)]))
    return store


def served_scores(store: FeatureStore, now: datetime) -> list[float | None]:
    rows = [{"rider_id": r} for r in range(ENTITIES)]
    return store.get_online_features(rows, ["scores:score"], now=now).to_dict()["scores__score"]


def test_a_sync_failed_with_redis_down_is_caught_up_by_the_next_incremental_run(
    spark, tmp_path
):
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    try:
        store = make_repo(tmp_path / "repo", server.url)
        write_source(store.repo_path, days=1)
        [first] = store.materialize_incremental(T0 + DAY)
        assert first.online_rows == ENTITIES and store.sync_progress.pending("scores") == []
        old = served_scores(store, T0 + 2 * DAY)

        write_source(store.repo_path, days=2)  # day 2: every rider has a newer score
        redis.Redis.from_url(server.url).save()  # kept across the restart below
        server.stop()
        result = CliRunner().invoke(
            app, ["materialize-incremental", "2026-01-02T12:00:00Z", "--repo", str(store.repo_path)]
        )
        assert result.exit_code == 7, result.output
        assert isinstance(result.exception, SystemExit)
        # the table write committed and was recorded; the sync is pending
        middle = T0 + DAY + DAY / 2
        assert store.registry.materialized() == {"scores": [Interval(start=EPOCH, end=middle)]}
        assert store.sync_progress.pending("scores") == [Interval(start=T0 + DAY, end=middle)]
        assert store.offline_store.current_version("scores") == first.table_version + 1

        server.start()
        assert served_scores(store, T0 + 2 * DAY) == old  # stale: the failed sync wrote nothing
        assert not store.verify(now=T0 + 2 * DAY).ok

        [second] = store.materialize_incremental(T0 + 2 * DAY)  # no `granero sync` by hand
        assert second.synced == (Interval(start=T0 + DAY, end=T0 + 2 * DAY),)
        assert second.online_rows == ENTITIES
        assert store.sync_progress.pending("scores") == []
        assert served_scores(store, T0 + 2 * DAY) == [float(r + 100) for r in range(ENTITIES)]
        report = store.verify(now=T0 + 2 * DAY)
        assert report.ok and report.views[0].checked == report.views[0].total == ENTITIES
        store.close()
    finally:
        server.stop()


def test_a_materialization_killed_during_its_sync_is_repaired_by_the_next_run(spark, tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    job = None
    try:
        # a long socket timeout: the frozen Redis holds the sync until the kill
        store = make_repo(tmp_path / "repo", server.url, socket_timeout=600)
        write_source(store.repo_path, days=1)
        store.materialize_incremental(T0 + DAY)
        write_source(store.repo_path, days=2)
        server.process.send_signal(signal.SIGSTOP)
        job = subprocess.Popen(
            [sys.executable, "-m", "granero.cli.main", "materialize-incremental",
             "2026-01-03T00:00:00Z", "--repo", str(store.repo_path), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_recorded_interval(store, T0 + 2 * DAY, job)
        os.killpg(job.pid, signal.SIGKILL)  # the CLI and its JVM, mid-sync
        job.wait(timeout=60)
        server.process.send_signal(signal.SIGCONT)
        assert store.sync_progress.pending("scores") == [Interval(start=T0 + DAY, end=T0 + 2 * DAY)]
        assert not store.verify(now=T0 + 2 * DAY).ok  # online is stale

        [repair] = store.materialize_incremental(T0 + 2 * DAY)  # nothing new offline
        assert repair.start == repair.end == T0 + 2 * DAY and repair.rows_written == 0
        assert repair.online_rows == ENTITIES and store.sync_progress.pending("scores") == []
        assert store.verify(now=T0 + 2 * DAY).ok
        store.close()
    finally:
        if job is not None and job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)
        server.stop()


def wait_for_recorded_interval(store: FeatureStore, end: datetime, job: subprocess.Popen) -> None:
    """Until the job has recorded its interval (only its sync is left then); fails if it exits."""
    deadline = time.monotonic() + scaled(300)  # a Spark start on a busy machine
    while time.monotonic() < deadline:
        intervals = store.registry.materialized().get("scores", [])
        if intervals and intervals[-1].end == end:
            return
        if job.poll() is not None:
            pytest.fail(f"the job ended early: {job.stdout.read().decode()[-2000:]}")
        time.sleep(0.2)  # polling the registry file, not waiting for a guessed duration
    pytest.fail("the job did not record its interval in time")


def test_granero_sync_clears_what_is_pending(spark, tmp_path, redis_url):
    store = make_repo(tmp_path / "repo", redis_url.rsplit("/", 1)[0] + "/6")
    write_source(store.repo_path, days=2)
    store.materialize(T0, T0 + 2 * DAY, sync_online=False)
    assert store.sync_progress.pending("scores") == [Interval(start=T0, end=T0 + 2 * DAY)]
    assert store.sync_online() == {"scores": ENTITIES}
    assert store.sync_progress.pending("scores") == []
    assert json.loads((store.registry.path / "online_pending.json").read_text()) == {}
    store.close()
