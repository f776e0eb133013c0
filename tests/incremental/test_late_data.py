"""Late rows reach the offline table, training sets and Redis through incremental runs.

Real Spark, Delta and redis-server. Rows are appended to the source between two incremental
runs with event times inside a window already materialized: a Delta source is read by commit
versions (any lateness), a Parquet source within its ``allowed_lateness``.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from granero.cli.main import app
from granero.errors import MaterializationError
from granero.incremental.plan import EPOCH, NEW_ROWS
from granero.incremental.planner import LANDED
from granero.registry.source_progress import SourceProgress
from tests.incremental.late_repo import (
    DAY,
    NOW,
    T0,
    append,
    expected_rows,
    latest,
    make_store,
    online_scores,
    table_rows,
    training_scores,
)

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]

HOUR = timedelta(hours=1)
FIRST = [(r, T0 + d * DAY + r * HOUR, float(100 * d + r)) for d in range(3) for r in range(6)]
LATE = [
    (0, T0 + DAY + 20 * HOUR, 999.0),  # newer than rider 0's day-1 row, older than its day-2 row
    (7, T0 + 20 * HOUR, 7.5),  # a rider never seen, late by two days
    (8, T0 + 2 * DAY + 23 * HOUR, 8.5),  # late within the last day
]


def run_cli(repo, end, *options):
    """``granero materialize-incremental END`` (end <= now, so never capped): its JSON rows, or
    its printed text."""
    result = CliRunner().invoke(
        app, ["materialize-incremental", end.isoformat(), "--repo", str(repo), *options],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if options else result.stdout


def check_everywhere(store, rows, end):
    """The table holds exactly the source rows before ``end``; training and Redis at ``end``
    serve each rider's newest value."""
    assert table_rows(store) == expected_rows(rows, end)
    riders = sorted({r[0] for r in rows})
    want = latest(rows, end)
    assert training_scores(store, riders, end) == want
    assert online_scores(store, riders, end) == want


def test_rows_appended_late_to_a_delta_source_reach_table_training_and_redis(spark, tmp_path, redis_url):
    store = make_store(tmp_path, redis_url, "delta")
    end = T0 + 3 * DAY
    append(spark, tmp_path / "source", "delta", FIRST)
    [first] = store.materialize_incremental(end, now=NOW)
    assert first.reason == NEW_ROWS and first.rows_written == len(FIRST)
    append(spark, tmp_path / "source", "delta", LATE)
    [row] = run_cli(tmp_path, end, "--json")  # nothing new by event time
    assert (row["start"], row["end"]) == (T0.isoformat(), end.isoformat())  # days 0-2, merged
    assert row["reason"] == "Delta source versions 1-1" and row["rows"] == len(FIRST + LATE)
    check_everywhere(store, FIRST + LATE, end)
    assert store.materialize_incremental(end, now=NOW) == []  # read once, no rewrite after
    assert SourceProgress(store.registry).mark("scores").delta_version == 1


def test_rows_within_allowed_lateness_of_a_parquet_source_are_picked_up_and_older_ones_are_not(
    spark, tmp_path, redis_url
):
    store = make_store(tmp_path, redis_url, "parquet", lateness="1d")
    end = T0 + 3 * DAY
    append(spark, tmp_path / "source", "parquet", FIRST)
    store.materialize_incremental(end, now=NOW)
    append(spark, tmp_path / "source", "parquet", LATE)
    printed = run_cli(tmp_path, end)
    assert "why: allowed_lateness 1d" in printed and "materialized" in printed
    assert store.registry.materialized()["scores"][-1].end == end
    within = [r for r in LATE if r[1] >= end - DAY]
    assert within == [LATE[2]]
    check_everywhere(store, FIRST + within, end)  # the older late rows are lost, as documented


def test_a_failed_table_write_records_no_source_version_and_the_next_run_repairs(
    spark, tmp_path, redis_url, monkeypatch
):
    store = make_store(tmp_path, redis_url, "delta")
    end = T0 + 3 * DAY
    append(spark, tmp_path / "source", "delta", FIRST)
    store.materialize_incremental(end, now=NOW)
    append(spark, tmp_path / "source", "delta", LATE)

    def dies(*args, **kwargs):  # the job dies after the source was read, before the commit
        raise MaterializationError("planted: the table write died")

    monkeypatch.setattr(store.offline_store, "write_window", dies)
    with pytest.raises(MaterializationError, match="planted"):
        store.materialize_incremental(end, now=NOW)
    assert SourceProgress(store.registry).mark("scores").delta_version == 0
    monkeypatch.undo()
    [repair] = store.materialize_incremental(end, now=NOW)
    assert "Delta source versions 1-1" in repair.reason
    check_everywhere(store, FIRST + LATE, end)


@pytest.mark.parametrize("seed", [1, 2])
def test_late_and_out_of_order_appends_end_like_one_materialization_from_scratch(
    spark, tmp_path, redis_url, seed
):
    """Oracle: the same source materialized once from scratch, after all the appends."""
    rng = random.Random(seed)
    store = make_store(tmp_path / "incremental", redis_url, "delta", source=tmp_path / "source")
    slots = rng.sample(range(6 * 24), 60)  # distinct (rider, hour): no full ties to break
    rows, end = [], T0
    for batch in range(3):
        end = max(end, T0 + rng.randint(1, 5) * DAY)
        chosen = [slots.pop() for _ in range(rng.randint(5, 15))]
        added = [(s % 6, T0 + (s // 6) * HOUR * 6 + timedelta(minutes=batch), rng.random()) for s in chosen]
        append(spark, tmp_path / "source", "delta", added)
        rows += added
        store.materialize_incremental(end, now=NOW)
    scratch = make_store(tmp_path / "scratch", redis_url, "delta", source=tmp_path / "source")
    scratch.materialize(T0 - DAY, end, now=NOW)
    assert table_rows(store) == table_rows(scratch) == expected_rows(rows, end)
    riders = list(range(6))
    assert online_scores(store, riders, end) == online_scores(scratch, riders, end)


def test_rows_landed_in_a_materialized_window_are_re_materialized(spark, tmp_path, redis_url):
    """Rows pushed or streamed land beside the tables (offline.landing); the next incremental
    run rewrites their window, so the table, training and Redis have them."""
    import pyarrow as pa

    from granero.offline.landing import landing_location, write_landed

    store = make_store(tmp_path, redis_url, "parquet")
    end = T0 + 3 * DAY
    append(spark, tmp_path / "source", "parquet", FIRST)
    store.materialize_incremental(end, now=NOW)
    landed = pa.table({
        "rider_id": pa.array([r[0] for r in LATE], pa.int64()),
        "event_timestamp": pa.array([r[1] for r in LATE], pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array([None] * len(LATE), pa.timestamp("us", tz="UTC")),
        "score": pa.array([r[2] for r in LATE], pa.float64()),
    })
    location = landing_location(store.config.offline_store.path)
    write_landed(location, "scores", landed, batch_id="late-1")
    [rerun] = store.materialize_incremental(end, now=NOW)
    assert (rerun.start, rerun.end, rerun.reason) == (T0, end, LANDED)
    check_everywhere(store, FIRST + LATE, end)
    write_landed(location, "scores", landed, batch_id="late-1")  # the same batch again: no file
    assert store.materialize_incremental(end, now=NOW) == []


def test_an_overwritten_delta_source_is_re_materialized_and_its_removed_rows_leave(spark, tmp_path, redis_url):
    """An overwrite removes every file (``remove`` actions): the rows it dropped leave the table
    and the rows it rewrote replace theirs, wherever their event times are."""
    store = make_store(tmp_path, redis_url, "delta")
    end = T0 + 3 * DAY
    append(spark, tmp_path / "source", "delta", FIRST)
    store.materialize_incremental(end, now=NOW)
    kept = [(r, ts, score + 0.25) for r, ts, score in FIRST if r != 5]  # rider 5 deleted upstream
    frame = spark.createDataFrame(kept, "rider_id bigint, ts timestamp, score double")
    frame.write.format("delta").mode("overwrite").save(str(tmp_path / "source"))
    [rerun] = store.materialize_incremental(end, now=NOW)
    # Delta writes no statistics in remove actions: every materialized window is rewritten
    assert (rerun.start, rerun.end) == (EPOCH, end) and "without statistics of 'ts'" in rerun.reason
    assert table_rows(store) == expected_rows(kept, end)
    assert training_scores(store, [0, 1, 5], end) == {0: latest(kept, end)[0], 1: latest(kept, end)[1], 5: None}
