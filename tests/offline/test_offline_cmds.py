"""The offline CLI on the example repo, through typer's runner (the CLI is thin: few runs)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from granero.cli import offline_cmds
from granero.feature_store import FeatureStore

app = typer.Typer()


@app.callback()
def _granero() -> None:
    """Stands in for the granero command until main.py registers offline_cmds."""


offline_cmds.register(app)
runner = CliRunner()
START, END = "2026-01-05T00:00:00Z", "2026-01-08T00:00:01Z"
VIEWS = {"driver_hourly_stats", "customer_profile", "route_stats", "driver_trips"}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.spark
def test_materialize_then_build_training_sets(spark, example_repo, tmp_path):
    FeatureStore(example_repo).apply()
    done = invoke("materialize", START, END, "--no-sync", "--repo", example_repo, "--json")
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert {r["view"] for r in rows} == VIEWS and all(r["rows"] > 0 for r in rows)
    assert all(isinstance(r["version"], int) for r in rows)

    again = invoke("materialize-incremental", END, "--no-sync", "--repo", example_repo)
    assert again.exit_code == 0 and again.stdout.count("up to date") >= 3, again.stdout

    out = tmp_path / "train"
    built = invoke(
        "historical",
        "--entities",
        example_repo / "data" / "trips.parquet",
        "--service",
        "trip_eta_model",
        "--out",
        out,
        "--repo",
        example_repo,
    )
    assert built.exit_code == 0, built.output
    training = spark.read.parquet(str(out))
    assert training.count() == 100  # every entity row, once
    manifest = json.loads((tmp_path / "train.manifest.json").read_text())
    assert (
        manifest["feature_service"] == "trip_eta_model" and set(manifest["table_versions"]) == VIEWS
    )
    assert training.columns[:6] == [
        "driver_id",
        "customer_id",
        "pickup_zone",
        "dropoff_zone",
        "event_timestamp",
        "label",
    ]
    stats = training.selectExpr(
        "count(route_stats__trips_last_hour) AS routes",
        "count(customer_profile__segment) AS segments",
    ).first()
    assert (
        stats["routes"] == 100 and 0 < stats["segments"] < 100
    )  # 6h routes always fresh; profiles start later

    csv = invoke(
        "historical",
        "--entities",
        example_repo / "data" / "trips.parquet",
        "-f",
        "driver_hourly_stats:conv_rate,route_stats:trips_last_hour",
        "--out",
        tmp_path / "csv",
        "--format",
        "csv",
        "--plain-names",
        "--repo",
        example_repo,
        "--json",
    )
    assert csv.exit_code == 0, csv.output
    assert json.loads(csv.stdout)["columns"][-2:] == ["conv_rate", "trips_last_hour"]
    header = next((tmp_path / "csv").glob("*.csv")).read_text().splitlines()[0]
    assert header.endswith("conv_rate,trips_last_hour")

    refused = invoke(
        "historical",
        "--entities",
        example_repo / "data" / "trips.parquet",
        "--service",
        "trip_eta_model",
        "--out",
        out,
        "--repo",
        example_repo,
    )
    assert refused.exit_code == 6 and "already exists" in refused.stderr


def test_bad_times_exit_with_the_invalid_request_code(tmp_path):
    result = invoke("materialize", "yesterday", END, "--repo", tmp_path)
    assert result.exit_code == 2 and "ISO 8601" in result.stderr
