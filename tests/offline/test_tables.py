"""The OfflineStore contract, run against every backend (a backend adds only its fixture)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from granero.errors import ConfigError, MaterializationError, RetrievalError
from granero.offline.parquet import ParquetConfig, ParquetStore, finish_swap
from granero.offline.schema import utc_date
from granero.offline.tables import build_offline_store
from granero.registry import Interval
from tests.offline.conftest import BACKENDS, offline_config

DAY1 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEMA = "k bigint, event_timestamp timestamp, created_timestamp timestamp, v double"
PARTITIONS = ["event_date", "k"]
"""Day first, then a view's own partition column (here the key)."""


def at(hours: float) -> datetime:
    return DAY1 + timedelta(hours=hours)


def window(start_hours: float, end_hours: float) -> Interval:
    return Interval(start=at(start_hours), end=at(end_hours))


def frame(spark, rows: list[tuple[int, float, float | None]]):
    """Rows (key, event hour, value) in table layout."""
    from pyspark.sql import functions as F

    data = [(k, at(h), at(h), v) for k, h, v in rows]
    return spark.createDataFrame(data, SCHEMA).withColumn(
        "event_date", utc_date(F.col("event_timestamp"))
    )


def content(store, name: str = "view", version: int | None = None) -> list[tuple]:
    rows = store.read(name, version).select("k", "event_timestamp", "v", "event_date").collect()
    return sorted((r.k, r.event_timestamp, r.v, r.event_date) for r in rows)


def expected(spark, rows) -> list[tuple]:
    return sorted((r.k, r.event_timestamp, r.v, r.event_date) for r in frame(spark, rows).collect())


@pytest.fixture(params=BACKENDS)
def store(request, spark, tmp_path):
    return build_offline_store(offline_config(request.param, tmp_path / "offline"), spark)


@pytest.mark.spark
def test_windows_replace_exactly_their_rows_and_failures_change_nothing(spark, store):
    first = [(1, 1, 1.0), (2, 20, 2.0), (3, 30, 3.0)]  # day 1 and day 2 morning
    second = [(1, 40, 4.0), (2, 47.5, None)]  # day 2 afternoon: shares day 2 with `first`
    assert not store.exists("view")
    written = store.write_window("view", frame(spark, first), window(0, 36), PARTITIONS)
    assert written.rows_written == 3 and store.exists("view")
    assert written.table_version == store.current_version("view")
    store.write_window("view", frame(spark, second), window(36, 48), PARTITIONS)
    assert content(store) == expected(spark, first + second)

    replacement = [(1, 2, 10.0), (3, 35.5, 30.0)]
    for _ in range(2):  # re-running the same window is idempotent
        written = store.write_window("view", frame(spark, replacement), window(0, 36), PARTITIONS)
        assert written.rows_written == 2
        assert content(store) == expected(spark, replacement + second)

    store.write_window("view", frame(spark, []), window(36, 48), PARTITIONS)
    assert content(store) == expected(spark, replacement)

    before = store.current_version("view")
    failing = frame(spark, [(1, 3, 1.0), (9, 4, 9.0)]).selectExpr(
        "k",
        "event_timestamp",
        "created_timestamp",
        "CASE WHEN k = 9 THEN raise_error('injected failure') ELSE v END AS v",
        "event_date",
    )
    with pytest.raises(MaterializationError, match="injected failure"):
        store.write_window("view", failing.repartition(2, "k"), window(0, 36), PARTITIONS)
    assert content(store) == expected(spark, replacement)
    assert store.current_version("view") == before
    _check_versions(spark, store, first)


def _check_versions(spark, store, first) -> None:
    """Delta reads any old version back; Parquet keeps none and says so."""
    if store.kind == "delta":
        assert content(store, version=0) == expected(spark, first)
        with pytest.raises(RetrievalError, match="version 99"):
            store.read("view", 99)
    else:
        assert store.current_version("view") is None
        with pytest.raises(RetrievalError, match="keeps no versions"):
            store.read("view", 0)


@pytest.mark.spark
def test_a_feature_added_later_reads_null_for_older_rows(spark, store):
    store.write_window(
        "view", frame(spark, [(1, 1, 1.0), (1, 20, 2.0)]), window(0, 24), ["event_date"]
    )
    widened = frame(spark, [(2, 30, 3.0)]).selectExpr("*", "v * 10 AS w")
    store.write_window("view", widened, window(24, 48), ["event_date"])
    rows = store.read("view").select("k", "v", "w").collect()
    assert sorted(tuple(r) for r in rows) == [(1, 1.0, None), (1, 2.0, None), (2, 3.0, 30.0)]


@pytest.mark.spark
def test_parquet_reads_an_empty_table_with_its_schema(spark, tmp_path):
    store = build_offline_store(offline_config("parquet", tmp_path), spark)
    store.write_window("view", frame(spark, []), window(0, 24), ["event_date"])
    assert store.exists("view")
    assert store.read("view").columns == [
        "k",
        "event_timestamp",
        "created_timestamp",
        "v",
        "event_date",
    ]
    assert content(store) == []


def test_parquet_refuses_object_store_paths(tmp_path):
    with pytest.raises(ConfigError, match="use type: delta"):
        ParquetStore(ParquetConfig(path="s3a://bucket/offline"), spark=None)


def _day(table: Path, day: str, marker: str) -> None:
    (table / f"event_date={day}").mkdir(parents=True)
    (table / f"event_date={day}" / "part.parquet").write_text(marker)


def test_an_interrupted_parquet_swap_is_rolled_forward(tmp_path):
    """A crash after day 1 was swapped: the journal finishes days 2 and 3, and removes day 4."""
    table, staging = tmp_path / "view", tmp_path / "view" / "_staging" / "abc"
    for day in ("2026-01-01", "2026-01-02", "2026-01-04"):
        _day(table, day, "old")
    (table / "_trash" / "abc").mkdir(parents=True)
    (table / "event_date=2026-01-01").rename(table / "_trash" / "abc" / "event_date=2026-01-01")
    _day(table, "2026-01-01", "new")  # day 1 was swapped in, then the process died
    _day(staging, "2026-01-02", "new")
    _day(staging, "2026-01-03", "new")
    journal = {
        "staging": "abc",
        "replace": ["2026-01-01", "2026-01-02", "2026-01-03"],
        "delete": ["2026-01-04"],
    }
    (table / "_swap.json").write_text(json.dumps(journal))
    finish_swap(table)
    finish_swap(table)  # idempotent
    days = {p.name: (p / "part.parquet").read_text() for p in table.glob("event_date=*")}
    assert days == {
        "event_date=2026-01-01": "new",
        "event_date=2026-01-02": "new",
        "event_date=2026-01-03": "new",
    }
    assert (
        not (table / "_swap.json").exists()
        and not staging.exists()
        and not (table / "_trash").exists()
    )


@pytest.mark.spark
def test_what_a_killed_parquet_write_left_behind_is_removed_by_the_next_write(spark, tmp_path):
    """SIGKILL during staging leaves a staged day and no journal; one after the journal was
    removed leaves trash. The next write clears both and the table holds exactly its rows."""
    store = build_offline_store(offline_config("parquet", tmp_path), spark)
    store.write_window("view", frame(spark, [(1, 1, 1.0)]), window(0, 24), ["event_date"])
    table = store.table_path("view")
    _day(table / "_staging" / "killed", "2026-01-01", "half-written")
    _day(table / "_trash" / "finished", "2026-01-01", "old")
    store.write_window("view", frame(spark, [(2, 30, 2.0)]), window(24, 48), ["event_date"])
    assert not (table / "_staging").exists() and not (table / "_trash").exists()
    assert content(store) == expected(spark, [(1, 1, 1.0), (2, 30, 2.0)])


@pytest.mark.spark
def test_rows_stored_in_an_older_dtype_convert_exactly_or_fail_naming_the_value(spark, tmp_path):
    """v was double, the definition now says bigint (apply --force, table not rebuilt): kept rows
    of a touched day and a whole read convert by the cast rule instead of truncating 55.7."""
    from pyspark.sql.types import LongType, StructField, StructType

    from granero.offline.schema import conform

    store = build_offline_store(offline_config("parquet", tmp_path), spark)
    store.write_window("view", frame(spark, [(1, 1, 55.7), (2, 2, 3.0)]), window(0, 24), ["event_date"])
    as_bigint = frame(spark, [(3, 13, 4.0)]).selectExpr(
        "k", "event_timestamp", "created_timestamp", "CAST(v AS BIGINT) AS v", "event_date"
    )
    with pytest.raises(MaterializationError, match="offline table column 'v': double value 55.7 is not a whole"):
        store.write_window("view", as_bigint, window(12, 24), ["event_date"])
    assert content(store) == expected(spark, [(1, 1, 55.7), (2, 2, 3.0)])
    declared = StructType([StructField("k", LongType()), StructField("v", LongType())])
    whole = conform(store.read("view").where("k = 2"), declared)
    assert [tuple(r) for r in whole.collect()] == [(2, 3)]
    with pytest.raises(Exception, match="double value 55.7 is not a whole number in the range of int64"):
        conform(store.read("view"), declared).collect()
