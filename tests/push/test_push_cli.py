"""``granero push``: JSON, JSON lines, CSV and Parquet files, through typer's runner and as a real
subprocess; a bad value exits 2 naming the column and row, and nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from granero.cli.main import app
from granero.feature_store import FeatureStore
from tests.push.conftest import TS, at
from tests.push.test_push import landing_files, served

runner = CliRunner()


def invoke(store: FeatureStore, *args: str):
    return runner.invoke(app, [*args, "--repo", str(store.repo_path)], catch_exceptions=False)


def test_each_file_format_is_pushed(store: FeatureStore, tmp_path: Path) -> None:
    rows = [{"driver_id": 1, "event_timestamp": "2026-01-07T00:10:00Z", "conv_rate": 0.5,
             "trips": 3, "tier": "gold"}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    result = invoke(store, "push", "driver_stats", "--file", str(tmp_path / "rows.json"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["online_rows"] == 1
    (tmp_path / "rows.jsonl").write_text(json.dumps(rows[0] | {"driver_id": 2}) + "\n")
    assert invoke(store, "push", "driver_stats", "-f", str(tmp_path / "rows.jsonl")).exit_code == 0
    (tmp_path / "rows.csv").write_text("driver_id,event_timestamp,conv_rate,trips,tier\n"
                                       "3,2026-01-07T00:10:00Z,0.25,4,silver\n")
    assert invoke(store, "push", "driver_stats", "-f", str(tmp_path / "rows.csv")).exit_code == 0
    pq.write_table(pa.table({"driver_id": [4], "event_timestamp": pa.array([at(10)], TS),
                             "conv_rate": [0.125], "trips": pa.array([5], pa.int32()), "tier": ["x"]}),
                   tmp_path / "rows.parquet")
    assert invoke(store, "push", "driver_stats", "-f", str(tmp_path / "rows.parquet")).exit_code == 0
    assert [served(store, d)["conv_rate"] for d in (1, 2, 3, 4)] == [0.5, 0.5, 0.25, 0.125]


def test_a_bad_value_exits_2_and_writes_nothing(store: FeatureStore, tmp_path: Path) -> None:
    rows = [{"driver_id": 1, "event_timestamp": "2026-01-07T00:10:00Z", "conv_rate": 0.5,
             "trips": 3, "tier": "gold"},
            {"driver_id": 2, "event_timestamp": "2026-01-07T00:10:00Z", "conv_rate": 0.5,
             "trips": 3.5, "tier": "gold"}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    process = subprocess.run(
        [sys.executable, "-m", "granero.cli.main", "push", "driver_stats", "--file",
         str(tmp_path / "rows.json"), "--repo", str(store.repo_path)],
        capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert "'trips'" in process.stderr and "3.5" in process.stderr
    assert landing_files(store) == [] and served(store, 1)["conv_rate"] is None
    (tmp_path / "rows.txt").write_text("x")
    result = invoke(store, "push", "driver_stats", "-f", str(tmp_path / "rows.txt"))
    assert result.exit_code == 2 and "rows.txt" in result.output
