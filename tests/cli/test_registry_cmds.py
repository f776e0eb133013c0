"""The registry commands through typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from granero.cli.main import app
from tests.repo_builder import VIEWS, standard_repo

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_init_then_apply_then_list(tmp_path):
    repo = tmp_path / "new_repo"
    assert invoke("init", str(repo)).exit_code == 0
    assert invoke("init", str(repo)).exit_code == 2  # never overwrites
    plan = json.loads(invoke("plan", "--repo", str(repo), "--json").stdout)
    assert {(c["kind"], c["op"]) for c in plan["changes"]} == {
        ("entity", "added"), ("feature_view", "added"), ("feature_service", "added")}
    applied = json.loads(invoke("apply", "--repo", str(repo), "--json").stdout)
    assert applied["version"] == 1
    views = json.loads(invoke("list", "views", "--repo", str(repo), "--json").stdout)
    assert [v["name"] for v in views] == ["user_activity"]


def test_list_filters_by_tag_and_owner(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    invoke("apply", "-r", str(repo))
    features = json.loads(invoke("list", "features", "-r", str(repo), "--tag", "pii=no", "--json").stdout)
    assert [(f["view"], f["feature"]) for f in features] == [("driver_stats", "trips")]
    assert json.loads(invoke("list", "entities", "-r", str(repo), "--owner", "nobody", "--json").stdout) == []
    entities = json.loads(invoke("list", "entities", "-r", str(repo), "--tag", "team=supply", "--json").stdout)
    assert entities[0]["join_keys"] == {"driver_id": "int64"}
    human = invoke("list", "services", "-r", str(repo))
    assert "ranking" in human.stdout and human.exit_code == 0


def test_describe_and_exit_codes(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    assert invoke("describe", "driver_stats", "-r", str(repo)).exit_code == 3  # nothing applied yet
    invoke("apply", "-r", str(repo))
    described = json.loads(invoke("describe", "driver_stats", "-r", str(repo), "--json").stdout)
    assert described["kind"] == "feature_view" and described["ttl"] == "1d"  # as written, not ISO 8601
    missing = invoke("describe", "nope", "-r", str(repo))
    assert missing.exit_code == 8
    assert "no entity, feature view, on-demand feature view or feature service named 'nope'" in missing.stderr
    (repo / "views.py").write_text(VIEWS.replace('name="trips", dtype="int64"', 'name="trips", dtype="string"'))
    refused = invoke("apply", "-r", str(repo))
    assert refused.exit_code == 4 and "changes dtype from int64 to string" in refused.stderr
    assert invoke("apply", "-r", str(repo), "--force").exit_code == 0
    (repo / "views.py").write_text(VIEWS.replace('ttl="1d"', 'ttl="-1d"'))
    assert invoke("plan", "-r", str(repo)).exit_code == 2


def test_cli_as_a_real_subprocess(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    granero = shutil.which("granero") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "granero")
    applied = subprocess.run([granero, "apply", "--repo", str(repo), "--json"], capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["version"] == 1
    missing = subprocess.run([granero, "describe", "nope", "--repo", str(repo)], capture_output=True, text=True)
    assert missing.returncode == 8 and "nope" in missing.stderr


def test_ttls_are_shown_as_written_in_list_describe_and_plan(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    invoke("apply", "-r", str(repo))
    listed = json.loads(invoke("list", "views", "-r", str(repo), "--json").stdout)
    assert {v["ttl"] for v in listed} == {"1d"}
    assert "1 day, 0:00:00" not in invoke("list", "views", "-r", str(repo)).stdout
    assert "1d" in invoke("describe", "driver_stats", "-r", str(repo)).stdout
    (repo / "views.py").write_text(VIEWS.replace('ttl="1d"', 'ttl="36h"'))
    planned = json.loads(invoke("plan", "-r", str(repo), "--json").stdout)
    ttl = [f for c in planned["changes"] for f in c["fields"] if f["path"] == "ttl"]
    assert ttl and {(f["old"], f["new"]) for f in ttl} == {("1d", "36h")}
    assert "ttl: '1d' -> '36h'" in invoke("plan", "-r", str(repo)).stdout
