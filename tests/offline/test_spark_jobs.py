"""The spark_jobs scripts called in-process (as the CLI would not: it calls the library)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from granero.feature_store import FeatureStore

JOBS = Path(__file__).resolve().parents[2] / "spark_jobs"


def load_job(name: str):
    spec = importlib.util.spec_from_file_location(f"granero_job_{name}", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.spark
def test_jobs_materialize_incrementally_and_build_a_training_set(
    spark, example_repo, tmp_path, capsys
):
    FeatureStore(example_repo).apply()
    materialize, historical = load_job("materialize"), load_job("historical")
    args = [
        "--repo",
        str(example_repo),
        "--incremental",
        "--end",
        "2026-01-08T00:00:01Z",
        "--views",
        "route_stats",
        "--no-sync",
    ]
    assert materialize.main(args) == 0
    [line] = capsys.readouterr().out.splitlines()
    done = json.loads(line)
    assert (
        done["view"] == "route_stats"
        and done["start"].startswith("1970-01-01")
        and done["rows_written"] > 0
    )

    out = tmp_path / "train"
    assert (
        historical.main(
            [
                "--repo",
                str(example_repo),
                "--entities",
                str(example_repo / "data" / "trips.parquet"),
                "--features",
                "route_stats:trips_last_hour",
                "--out",
                str(out),
                "--plain-names",
            ]
        )
        == 0
    )
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["table_versions"] == {"route_stats": 0} and manifest["columns"] == [
        "trips_last_hour"
    ]
    assert spark.read.parquet(str(out)).where("trips_last_hour IS NOT NULL").count() == 100


def test_jobs_report_errors_with_the_cli_exit_codes(tmp_path, capsys):
    materialize = load_job("materialize")
    assert materialize.main(["--repo", str(tmp_path), "--incremental"]) == 2
    assert "feature_store.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        materialize.main(
            ["--repo", str(tmp_path)]
        )  # --start/--end are required without --incremental
