"""``granero historical`` answers small requests in process (no Spark job) and large ones with
Spark, writing the same training set either way."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from granero.cli.main import app
from granero.feature_store import FeatureStore
from granero.offline import training_files

runner = CliRunner()


def historical(repo, out, *extra: str):
    args = ["historical", "--entities", str(repo / "data" / "trips.parquet"), "--service",
            "trip_eta_model", "--out", str(out), "--repo", str(repo), "--json", *extra]
    done = runner.invoke(app, args, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def by_keys(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["driver_id", "customer_id", "event_timestamp"]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.spark
@pytest.mark.slow
def test_small_requests_run_in_process_and_match_spark(spark, example_repo, tmp_path, monkeypatch):
    store = FeatureStore(example_repo)
    store.apply()
    store.materialize(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC),
                      sync_online=False)

    local = historical(example_repo, tmp_path / "local")
    assert local["engine"] == "local"
    monkeypatch.setattr(training_files, "SMALL_ENTITY_FILE_BYTES", 0)  # as if the file were large
    via_spark = historical(example_repo, tmp_path / "spark")
    assert via_spark["engine"] == "spark"
    assert local["columns"] == via_spark["columns"]

    written = pd.read_parquet(tmp_path / "local")
    assert written.shape == (100, len(local["columns"]))
    pd.testing.assert_frame_equal(by_keys(written), by_keys(pd.read_parquet(tmp_path / "spark")),
                                  check_dtype=False)
    again = runner.invoke(app, ["historical", "--entities", str(example_repo / "data" / "trips.parquet"),
                                "--service", "trip_eta_model", "--out", str(tmp_path / "local"),
                                "--repo", str(example_repo)])
    assert again.exit_code == 6 and "already exists" in again.stderr  # like Spark's writer


def test_only_small_local_parquet_entity_files_are_read_in_process(tmp_path):
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": pd.to_datetime(["2026-01-01"] * 2)})
    frame.to_parquet(tmp_path / "rows.parquet")
    frame.to_csv(tmp_path / "rows.csv")
    (tmp_path / "folder").mkdir()
    frame.to_parquet(tmp_path / "folder" / "part-0.parquet")
    pd.testing.assert_frame_equal(training_files.small_parquet_entities(str(tmp_path / "rows.parquet")), frame)
    assert len(training_files.small_parquet_entities(str(tmp_path / "folder"))) == 2
    assert training_files.small_parquet_entities(str(tmp_path / "rows.parquet"), max_bytes=10) is None
    assert training_files.small_parquet_entities(str(tmp_path / "rows.csv")) is None
    assert training_files.small_parquet_entities("s3a://bucket/rows.parquet") is None
    (tmp_path / "folder" / "_delta_log").mkdir()
    assert training_files.small_parquet_entities(str(tmp_path / "folder")) is None  # a Delta table


def test_the_in_process_output_replaces_a_folder_only_when_asked(tmp_path):
    out = tmp_path / "train"
    training_files.write_parquet_training_set(pd.DataFrame({"a": [1]}), str(out), overwrite=False)
    with pytest.raises(Exception, match="already exists; pass --overwrite"):
        training_files.write_parquet_training_set(pd.DataFrame({"a": [2]}), str(out), overwrite=False)
    training_files.write_parquet_training_set(pd.DataFrame({"a": [3]}), str(out), overwrite=True)
    assert pd.read_parquet(out)["a"].tolist() == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # no staging left behind
