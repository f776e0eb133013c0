"""The online commands through typer's runner (sync, verify on the materialized example repo) and
as real subprocesses (online status / stop of an embedded server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from granero.cli.main import app
from granero.online.embedded import EmbeddedRedis
from granero.online.encoding import encode_entity_key, key_prefix
from tests.conftest import scaled

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.spark
@pytest.mark.redis
@pytest.mark.slow
def test_verify_exits_9_on_a_missing_row_and_sync_repairs_it(materialized_repo, example_url):
    client = redis.Redis.from_url(example_url)
    key = key_prefix("rides", "driver_hourly_stats") + encode_entity_key(["int64"], [1001])
    value = client.get(key)
    client.delete(key)
    result = invoke(
        "verify",
        "--repo",
        str(materialized_repo),
        "--now",
        "2026-01-08T00:00:00Z",
        "--sample",
        "10",
        "--json",
    )
    assert result.exit_code == 9
    report = json.loads(result.stdout)
    mismatches = {v["view"]: v["mismatches"] for v in report["views"]}
    assert mismatches["customer_profile"] == mismatches["route_stats"] == 0
    examples = [e for v in report["views"] for e in v["examples"]]
    assert mismatches["driver_hourly_stats"] == len(examples) > 0
    assert {(str(e["entity"]), e["status"]) for e in examples} == {
        ("{'driver_id': 1001}", "NOT_FOUND")
    }
    assert "online value(s) differ" in result.stderr
    synced = invoke(
        "sync", "--repo", str(materialized_repo), "--views", "driver_hourly_stats", "--json"
    )
    assert synced.exit_code == 0 and json.loads(synced.stdout) == {"driver_hourly_stats": 10}
    assert client.get(key) == value


@pytest.mark.redis
def test_online_status_and_stop_as_subprocesses(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text("project: p\nonline_store: {type: embedded}\n")
    server = EmbeddedRedis(repo / "data" / "online")

    def granero(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "granero.cli.main", *args, "--repo", str(repo)],
            capture_output=True,
            text=True,
            timeout=scaled(60),
        )

    try:
        assert json.loads(granero("online", "status", "--json").stdout)["running"] is False
        port = server.start().port
        status = json.loads(granero("online", "status", "--json").stdout)
        assert status["running"] is True and status["port"] == port
        stopped = granero("online", "stop")
        assert stopped.returncode == 0 and "stopped the embedded online store" in stopped.stdout
        assert server.running() is None
        assert "no embedded online store was running" in granero("online", "stop").stdout
    finally:
        server.stop()


def test_bad_now_is_a_usage_error(tmp_path: Path):
    result = runner.invoke(app, ["verify", "--repo", str(tmp_path), "--now", "yesterday"])
    assert result.exit_code == 2 and "not an ISO 8601 time" in result.output
