"""Materialization: source kinds, schema errors, failures that change nothing, increments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from granero.definitions import Entity, FeatureView, Field, FileSource, TableSource
from granero.errors import InvalidRequest, MaterializationError, NotFound
from granero.offline.materialize import EPOCH
from granero.registry import Interval
from tests.offline.conftest import BACKENDS, make_feature_store

pytestmark = pytest.mark.spark

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=2)
user = Entity(join_keys={"user_id": "int64"})


def source_rows(values: list[float], hours: list[int] | None = None) -> pd.DataFrame:
    hours = hours or list(range(len(values)))
    return pd.DataFrame(
        {
            "uid": [1000 + i % 3 for i in range(len(values))],
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "amount": values,
        }
    )


def view(path: str, **changes) -> FeatureView:
    spec = {
        "entities": [user],
        "source": FileSource(path=path, timestamp_field="ts", field_mapping={"uid": "user_id"}),
        "ttl": "1d",
        "features": [Field(name="amount", dtype="float64"), Field(name="doubled", dtype="float64")],
        "transformations": {
            "doubled": "CASE WHEN amount < 0 THEN raise_error('negative amount') "
            "ELSE amount * 2 END"
        },
        **changes,
    }
    return FeatureView(**spec)


def write_parquet(frame: pd.DataFrame, path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / "part-0.parquet", index=False, coerce_timestamps="us")
    return str(path)


def table_content(store, name: str) -> list[tuple]:
    """(user, hours after T0, amount, doubled) rows of the view's table."""
    hours = f"(unix_seconds(event_timestamp) - {int(T0.timestamp())}) / 3600"
    rows = (
        store.offline_store.read(name).selectExpr("user_id", hours, "amount", "doubled").collect()
    )
    return sorted(tuple(r) for r in rows)


def test_missing_source_columns_are_named_with_the_path_and_the_columns_present(spark, tmp_path):
    path = write_parquet(source_rows([1.0]).drop(columns=["amount"]), tmp_path / "src")
    store = make_feature_store(tmp_path, {"user": user, "spend": view(path)})
    with pytest.raises(MaterializationError) as failure:
        store.materialize(T0, END, sync_online=False)
    message = str(failure.value)
    assert "'spend'" in message and path in message and "'amount'" in message
    assert "['ts', 'user_id']" in message
    assert store.registry.materialized() == {}


def test_an_unresolvable_transformation_is_named(spark, tmp_path):
    path = write_parquet(source_rows([1.0]), tmp_path / "src")
    bad = view(path, transformations={"doubled": "amount * no_such_column"})
    store = make_feature_store(tmp_path, {"user": user, "spend": bad})
    with pytest.raises(
        MaterializationError, match=r"'spend' transformations\['doubled'\].*no_such_column"
    ):
        store.materialize(T0, END, sync_online=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_failing_mid_write_leaves_table_and_registry_as_they_were(spark, tmp_path, backend):
    source = tmp_path / "src"
    store = make_feature_store(
        tmp_path,
        {"user": user, "spend": view(write_parquet(source_rows([1.0, 2.0, 3.0]), source))},
        backend,
    )
    [first] = store.materialize(T0, END, sync_online=False)
    before = table_content(store, "spend")
    assert first.rows_written == 3 and len(before) == 3
    write_parquet(source_rows([5.0, -1.0, 6.0, 7.0]), source)  # the -1 raises inside the Spark job
    with pytest.raises(MaterializationError, match="negative amount"):
        store.materialize(T0, END, sync_online=False)
    assert table_content(store, "spend") == before
    assert store.offline_store.current_version("spend") == first.table_version
    assert store.registry.materialized() == {"spend": [Interval(start=T0, end=END)]}


def test_csv_and_table_sources_with_field_mapping_filter_and_full_ties(spark, tmp_path):
    rows = source_rows([1.0, 2.0, 3.0, -5.0])
    tie = rows.iloc[[0]].assign(amount=9.0)  # same key and time as row 0: the greater amount wins
    rows = pd.concat([rows, tie], ignore_index=True)
    spark_rows = spark.createDataFrame(rows)
    spark_rows.write.option("header", "true").csv(str(tmp_path / "csv"))
    spark_rows.createOrReplaceTempView("spend_events")
    sources = {
        "from_csv": FileSource(
            path=str(tmp_path / "csv"),
            format="csv",
            options={"header": "true", "inferSchema": "true"},
            timestamp_field="ts",
            field_mapping={"uid": "user_id"},
        ),
        "from_table": TableSource(
            table="spend_events", timestamp_field="ts", field_mapping={"uid": "user_id"}
        ),
    }
    views = {
        name: view("unused", source=source, filter="amount >= 0")
        for name, source in sources.items()
    }
    store = make_feature_store(tmp_path, {"user": user, **views})
    results = store.materialize(T0, END, sync_online=False)
    assert [r.rows_written for r in results] == [3, 3]
    expected = [(1000, 0.0, 9.0, 18.0), (1001, 1.0, 2.0, 4.0), (1002, 2.0, 3.0, 6.0)]
    for name in sources:
        assert table_content(store, name) == expected, name
    table = store.offline_store.read("from_csv")
    assert table.columns == [
        "user_id",
        "event_timestamp",
        "created_timestamp",
        "amount",
        "doubled",
        "event_date",
    ]
    assert dict(table.dtypes)["user_id"] == "bigint"


def test_incremental_runs_continue_where_the_last_one_ended(spark, tmp_path):
    source = tmp_path / "src"
    store = make_feature_store(
        tmp_path, {"user": user, "spend": view(write_parquet(source_rows([1.0, 2.0]), source))}
    )
    middle = T0 + timedelta(hours=1)
    [first] = store.materialize_incremental(middle, sync_online=False)
    assert (first.start, first.end, first.rows_written) == (EPOCH, middle, 1)
    write_parquet(source_rows([1.0, 2.0, 3.0]), source)
    [second] = store.materialize_incremental(END, sync_online=False)
    assert (second.start, second.rows_written) == (middle, 2)
    assert store.materialize_incremental(END, sync_online=False) == []
    assert store.registry.materialized() == {"spend": [Interval(start=EPOCH, end=END)]}
    assert len(table_content(store, "spend")) == 3


def test_requests_are_checked_before_any_work(tmp_path):
    store = make_feature_store(tmp_path, {"user": user, "spend": view(str(tmp_path))})
    with pytest.raises(NotFound, match="'nope'"):
        store.materialize(T0, END, ["nope"])
    with pytest.raises(InvalidRequest, match="must be after start"):
        store.materialize(END, T0)
