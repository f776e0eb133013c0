"""``granero status`` after a real materialize + sync (Spark, Delta/Parquet, Redis), through
typer's runner and as a subprocess; its exit codes without Spark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from granero.cli.common import console
from granero.cli.main import app
from granero.feature_store import FeatureStore
from granero.freshness import record_stream_progress
from granero.offline.tables import read_view_arrow
from tests.conftest import DATA_END, ROOT
from tests.serving.conftest import write_repo, write_rows

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # rich folds cells of a table wider than the terminal


WINDOW = {"start": (DATA_END - timedelta(days=2)).isoformat().replace("+00:00", "Z"),
          "end": DATA_END.isoformat().replace("+00:00", "Z")}
"""What the materialized_repo fixture materialized, as the registry writes it."""


def status_json(*args: str) -> list[dict]:
    result = runner.invoke(app, ["status", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def newest_offline_event(store: FeatureStore, view: str) -> str:
    """The oracle: the newest event time of the view's offline table, which the sync brought online."""
    defs = store.registered()
    table = read_view_arrow(store.offline_store, defs, defs.feature_views[view], None,
                            ["event_timestamp"], (date.min, date.max))
    return pc.max(table["event_timestamp"]).as_py().astimezone(UTC).isoformat()


@pytest.mark.spark
@pytest.mark.redis
@pytest.mark.slow
def test_status_after_materialize_and_sync(materialized_repo):
    checked_at = datetime.now(UTC)
    report = {view["view"]: view for view in status_json("--repo", str(materialized_repo))}
    with FeatureStore(materialized_repo) as store:
        views = store.registered().feature_views
        assert set(report) == set(views)
        for name, view in report.items():
            assert view["last_materialized"] == WINDOW
            assert checked_at - timedelta(hours=1) < datetime.fromisoformat(view["materialized_at"]) <= checked_at
            assert view["pending_sync"] == [] and view["stream"] is None
            assert view["online"] == views[name].online
            if view["online"]:
                assert view["latest_event_online"] == newest_offline_event(store, name)
                age = (checked_at - datetime.fromisoformat(view["latest_event_online"])).total_seconds()
                assert age <= view["age_seconds"]


@pytest.mark.spark
@pytest.mark.redis
@pytest.mark.slow
def test_status_as_a_subprocess_shows_every_view(materialized_repo):
    command = [sys.executable, "-m", "granero.cli.main", "status", "--repo", str(materialized_repo)]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env={**os.environ, **WIDE})
    assert shown.returncode == 0, shown.stderr
    with FeatureStore(materialized_repo) as store:
        for name in store.registered().feature_views:
            assert name in shown.stdout
    as_json = subprocess.run([*command, "--json", "--views", "driver_trips"], capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
    assert [v["view"] for v in json.loads(as_json.stdout)] == ["driver_trips"]


@pytest.mark.redis
def test_status_shows_stream_progress_and_pushed_freshness(tmp_path, online_url, project, monkeypatch):
    repo = write_repo(tmp_path / "repo", online_url, project)
    with FeatureStore(repo) as store:
        store.apply()
        event = datetime(2026, 1, 7, 12, tzinfo=UTC)
        write_rows(store, "driver_stats", [{"driver_id": 1, "event_timestamp": event}])
        record_stream_progress(store.online_store, "driver_stats", batch_id=12, rows=40,
                               dead_letters=2, at=event + timedelta(seconds=1))
    (view,) = status_json("--repo", str(repo), "--views", "driver_stats")
    assert view["latest_event_online"] == event.isoformat()
    assert view["stream"] == {"batch_id": 12, "rows": 40, "dead_letters": 2,
                              "at": (event + timedelta(seconds=1)).isoformat()}
    assert view["last_materialized"] is None and view["materialized_at"] is None
    # rich fixes a console's width when it is created if COLUMNS is set then (as under xdist)
    monkeypatch.setattr(console, "_width", int(WIDE["COLUMNS"]))
    table = runner.invoke(app, ["status", "--repo", str(repo)], env=WIDE)
    assert "2026-01-07 12:00:00" in table.stdout and "12, 40, 2, 2026-01-07 12:00:01" in table.stdout


@pytest.mark.redis
def test_exit_codes(tmp_path, online_url, project):
    repo = write_repo(tmp_path / "repo", online_url, project)
    assert runner.invoke(app, ["status", "--repo", str(repo)]).exit_code == 3  # nothing applied
    FeatureStore(repo).apply()
    unknown = runner.invoke(app, ["status", "--repo", str(repo), "--views", "nope"])
    assert unknown.exit_code == 8 and "'nope'" in unknown.output
    down = write_repo(tmp_path / "down", "redis://127.0.0.1:1/0", project)
    FeatureStore(down).apply()
    assert runner.invoke(app, ["status", "--repo", str(down)]).exit_code == 7
