"""``granero status --stale-after``: exit 14 when a shown online view's newest value online is
older than the threshold (or was never written), after printing the report; real Redis, the
ages two hours apart from the thresholds so the run's own duration cannot matter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from granero.cli.main import app
from granero.feature_store import FeatureStore
from tests.serving.conftest import write_repo, write_rows

runner = CliRunner()


def status(repo, *args: str):
    return runner.invoke(app, ["status", "--repo", str(repo), "--json", *args])


@pytest.mark.redis
def test_stale_after_exits_14_naming_the_stale_views(tmp_path, online_url, project):
    repo = write_repo(tmp_path / "repo", online_url, project)
    with FeatureStore(repo) as store:
        store.apply()
        event = datetime.now(UTC) - timedelta(hours=4)
        write_rows(store, "driver_stats", [{"driver_id": 1, "event_timestamp": event}])
    fresh = status(repo, "--views", "driver_stats", "--stale-after", "6h")
    assert fresh.exit_code == 0, fresh.output
    assert [v["stale"] for v in json.loads(fresh.stdout)] == [False]
    old = status(repo, "--views", "driver_stats", "--stale-after", "2h")
    assert old.exit_code == 14 and "driver_stats (4:00:0" in old.stderr
    assert [v["stale"] for v in json.loads(old.stdout)] == [True]  # the report still printed
    never = status(repo, "--views", "driver_stats,route_stats", "--stale-after", "1000d")
    assert never.exit_code == 14 and "route_stats (never written online)" in never.stderr
    assert "driver_stats" not in never.stderr
    assert "stale" not in json.loads(status(repo, "--views", "driver_stats").stdout)[0]
    for bad in ("soon", "0m", "-1h"):
        refused = status(repo, "--stale-after", bad)
        assert refused.exit_code == 2 and "--stale-after" in refused.output

