"""``apply`` warns, without failing, about a local file source that does not exist (yet)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from granero.cli.main import app
from tests.repo_builder import VIEWS, standard_repo

runner = CliRunner()


def apply(repo) -> tuple[int, list[str], str]:
    result = runner.invoke(app, ["apply", "-r", str(repo), "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)["warnings"], result.stderr


def test_a_missing_local_source_path_is_a_warning_naming_view_file_and_path(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    code, warnings, stderr = apply(repo)
    assert code == 0
    [warning] = warnings
    assert f"{repo / 'views.py'}:" in warning
    assert "feature view 'driver_stats'" in warning and "'data/driver_stats'" in warning
    assert str(repo / "data" / "driver_stats") in warning and "does not exist" in warning
    assert "warning:" in stderr and "driver_stats" in stderr

    (repo / "data" / "driver_stats").mkdir(parents=True)
    assert apply(repo)[:2] == (0, [])


def test_uris_and_existing_globs_are_not_warned_about(tmp_path):
    remote = VIEWS.replace('path="data/driver_stats"', 'path="s3a://bucket/driver_stats"')
    assert apply(standard_repo(tmp_path / "remote", views=remote))[:2] == (0, [])
    globbed = VIEWS.replace('path="data/driver_stats"', 'path="data/part-*.parquet"')
    repo = standard_repo(tmp_path / "glob", views=globbed)
    assert len(apply(repo)[1]) == 1
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data" / "part-0.parquet").write_bytes(b"")
    assert apply(repo)[:2] == (0, [])
