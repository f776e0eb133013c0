"""Delta versions and commit metrics read from the log folder, without a Spark job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from granero.offline.delta import DeltaConfig, DeltaStore, latest_version, output_rows
from granero.offline.schema import utc_date
from granero.registry import Interval

DAY1 = datetime(2026, 1, 1, tzinfo=UTC)


def test_latest_version_reads_only_commit_files():
    names = [
        "00000000000000000000.json",
        "00000000000000000010.checkpoint.parquet",
        "00000000000000000011.json",
        "00000000000000000011.crc",
        "_last_checkpoint",
        "00000000000000000002.00000000000000000005.compacted.json",
    ]
    assert latest_version(names) == 11
    assert latest_version(["_last_checkpoint"]) is None


def test_output_rows_come_from_the_commit_info_action():
    commit = "\n".join([
        json.dumps({"protocol": {"minReaderVersion": 1}}),
        json.dumps({"commitInfo": {"operationMetrics": {"numOutputRows": "42"}}}),
        json.dumps({"add": {"path": "x.parquet"}}),
    ])
    assert output_rows(commit) == 42
    assert output_rows(json.dumps({"commitInfo": {}})) == 0


@pytest.mark.spark
def test_window_writes_report_versions_and_rows_without_spark_jobs(spark, tmp_path):
    from pyspark.sql import functions as F

    store = DeltaStore(DeltaConfig(path=str(tmp_path)), spark)
    rows = [(k, DAY1 + timedelta(hours=k), float(k)) for k in range(3)]
    frame = spark.createDataFrame(rows, "k bigint, event_timestamp timestamp, v double")
    frame = frame.withColumn("event_date", utc_date(F.col("event_timestamp")))
    interval = Interval(start=DAY1, end=DAY1 + timedelta(days=1))
    assert store.current_version("view") is None
    written = [store.write_window("view", frame, interval, ["event_date"]) for _ in range(2)]
    assert [(w.rows_written, w.table_version) for w in written] == [(3, 0), (3, 1)]
    tracker = spark.sparkContext.statusTracker()
    before = tracker.getJobIdsForGroup()
    assert store.current_version("view") == 1
    assert tracker.getJobIdsForGroup() == before  # listing the log runs no Spark job
