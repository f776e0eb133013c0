"""Sources as users write them: Parquet from a plain ``DataFrame.to_parquet`` (nanosecond
timestamps, time-zone-aware and naive), read by a real Spark materialization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from granero.definitions import Entity, FeatureView, Field, FileSource
from granero.errors import MaterializationError
from granero.offline.sources import nanosecond_columns
from tests.offline.conftest import BACKENDS, make_feature_store

pytestmark = pytest.mark.spark

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=2)
user = Entity(join_keys={"user_id": "int64"})
NANOS = pd.Timedelta(nanoseconds=789)
"""Below a microsecond: floored away, as every Granero timestamp is in microseconds."""


def pandas_source(directory) -> tuple[str, pd.DataFrame]:
    """A source written by plain ``to_parquet``: pandas' nanosecond timestamps throughout."""
    events = pd.to_datetime([T0 + timedelta(hours=h, microseconds=h) for h in (1, 5, 30)])
    frame = pd.DataFrame({
        "user_id": [1, 2, 1],
        "ts_aware": (events + NANOS).tz_convert("Europe/Madrid"),
        "ts_naive": (events + pd.Timedelta(minutes=1)).tz_localize(None),
        "seen": events.tz_localize(None) - pd.Timedelta(days=3),
        "amount": [1.5, 2.5, 3.5],
    })
    directory.mkdir(parents=True)
    frame.to_parquet(directory / "part-0.parquet")
    return str(directory), frame


def view(path: str, timestamp_field: str, created: str | None) -> FeatureView:
    return FeatureView(
        entities=[user],
        source=FileSource(path=path, timestamp_field=timestamp_field, created_timestamp_field=created),
        ttl="1d",
        features=[Field(name="seen", dtype="timestamp"), Field(name="amount", dtype="float64")],
    )


def micros(times: pd.Series) -> list[int]:
    """Microseconds since the epoch, floored; naive values are UTC."""
    utc = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    return [t.value // 1000 for t in utc]


def table_micros(store, name: str) -> list[tuple]:
    table = store.offline_store.read(name).orderBy("event_timestamp")
    columns = ["unix_micros(event_timestamp)", "unix_micros(created_timestamp)", "unix_micros(seen)"]
    return [tuple(r) for r in table.selectExpr("user_id", *columns, "amount").collect()]


def test_the_footer_names_the_nanosecond_columns(tmp_path):
    path, _ = pandas_source(tmp_path / "src")
    assert nanosecond_columns(path) == {"ts_aware": False, "ts_naive": False, "seen": False}
    assert nanosecond_columns(f"file://{path}/part-0.parquet") == {
        "ts_aware": False, "ts_naive": False, "seen": False,
    }
    assert nanosecond_columns("s3a://bucket/x") == {} and nanosecond_columns(str(tmp_path / "no")) == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plain_to_parquet_source_materializes_aware_and_naive_timestamps(spark, tmp_path, backend):
    path, frame = pandas_source(tmp_path / "src")
    views = {
        "aware": view(path, "ts_aware", created="ts_naive"),
        "naive": view(path, "ts_naive", created=None),
    }
    store = make_feature_store(tmp_path, {"user": user, **views}, backend)
    results = store.materialize(T0, END, sync_online=False)
    assert [r.rows_written for r in results] == [3, 3]
    seen, amounts = micros(frame["seen"]), list(frame["amount"])
    aware, naive = micros(frame["ts_aware"]), micros(frame["ts_naive"])
    users = list(frame["user_id"])
    assert table_micros(store, "aware") == list(zip(users, aware, naive, seen, amounts, strict=True))
    none = [None] * 3
    assert table_micros(store, "naive") == list(zip(users, naive, none, seen, amounts, strict=True))


def test_a_nanosecond_source_spark_cannot_be_spared_says_how_to_fix_it(spark, tmp_path):
    path, _ = pandas_source(tmp_path / "src")
    store = make_feature_store(
        tmp_path, {"user": user, "glob": view(f"{path}/*.parquet", "ts_aware", created=None)}
    )
    with pytest.raises(MaterializationError, match="coerce_timestamps='us'") as failure:
        store.materialize(T0, END, sync_online=False)
    assert "'glob'" in str(failure.value)


def test_an_entity_file_written_by_pandas_is_read_for_training(spark, tmp_path):
    path, frame = pandas_source(tmp_path / "src")
    store = make_feature_store(
        tmp_path, {"user": user, "aware": view(path, "ts_aware", created=None)}, offline="parquet"
    )
    store.materialize(T0, END, sync_online=False)
    entities = pd.DataFrame({
        "user_id": [1, 2],
        "event_timestamp": pd.to_datetime([T0 + timedelta(hours=2), T0 + timedelta(hours=6)]),
    })
    entities.to_parquet(tmp_path / "entities.parquet")  # nanoseconds, naive: UTC
    training = store.get_historical_features(str(tmp_path / "entities.parquet"), features=["aware:amount"])
    rows = training.selectExpr("user_id", "unix_micros(event_timestamp)", "aware__amount").collect()
    expected_micros = micros(entities["event_timestamp"])
    assert sorted(tuple(r) for r in rows) == [(1, expected_micros[0], 1.5), (2, expected_micros[1], 2.5)]
