"""Pushed rows reach the offline table when their window is materialized, once: the landed rows of
the window are unioned with the source rows before full ties are dropped (both backends)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from granero.feature_store import FeatureStore
from granero.offline.tables import read_view_table
from tests.push.conftest import T0, at, write_push_repo
from tests.push.test_push import row

WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=1))


def naive(minute: float) -> pd.Timestamp:
    """An event time as Spark's toPandas gives it: naive UTC."""
    return pd.Timestamp(at(minute)).tz_localize(None)


def table_rows(store: FeatureStore, view: str) -> list[tuple]:
    defs = store.registered()
    frame = read_view_table(store.offline_store, defs, defs.feature_views[view]).toPandas()
    columns = ["driver_id", "event_timestamp", *[f.name for f in defs.feature_views[view].features]]
    return sorted(tuple(r) for r in frame[columns].itertuples(index=False))


def training(store: FeatureStore, drivers: list[int], minute: float, engine: str) -> list:
    entities = pd.DataFrame({"driver_id": drivers, "event_timestamp": pd.to_datetime([at(minute)] * len(drivers))})
    frame = store.get_historical_features_pandas(entities, ["driver_stats:conv_rate"], engine=engine)
    return frame["driver_stats__conv_rate"].tolist()


@pytest.mark.parametrize("offline", ["parquet", "delta"])
def test_pushed_rows_are_materialized_once_and_reach_training(tmp_path: Path, push_url, spark, offline) -> None:
    with FeatureStore(write_push_repo(tmp_path / "repo", push_url, offline=offline)) as store:
        store._spark = spark
        store.apply()
        store.push("driver_stats", [row(1, 30, conv_rate=0.75), row(3, 45, conv_rate=0.125)], batch_id="a")
        store.materialize(*WINDOW, sync_online=False)
        store.push("driver_stats", [row(1, 30, conv_rate=0.75)], batch_id="b")  # a resend: a full tie
        store.materialize(*WINDOW, sync_online=False)
        rows = table_rows(store, "driver_stats")
        assert [r[:3] for r in rows] == [(1, naive(0), 0.5), (1, naive(30), 0.75),
                                         (2, naive(0), 0.25), (3, naive(45), 0.125)]
        assert training(store, [1, 2, 3], 60, "local") == [0.75, 0.25, 0.125]
        if offline == "delta":
            assert training(store, [1, 2, 3], 60, "spark") == [0.75, 0.25, 0.125]


def test_pushed_events_of_an_aggregate_view_are_materialized_once(tmp_path: Path, push_url, spark) -> None:
    with FeatureStore(write_push_repo(tmp_path / "repo", push_url)) as store:
        store._spark = spark
        store.apply()
        events = [{"driver_id": 1, "event_timestamp": at(5), "fare": 2.0},
                  {"driver_id": 2, "event_timestamp": at(6), "fare": 4.0}]
        store.push("driver_trips", events)
        store.materialize(*WINDOW, views=["driver_trips"])
        store.push("driver_trips", events)  # the same rows: landed once
        store.materialize(*WINDOW, views=["driver_trips"])
        assert [r[:3] for r in table_rows(store, "driver_trips")] == [
            (1, naive(0), 10.0), (1, naive(5), 2.0), (2, naive(6), 4.0)]
        online = store.get_online_features([{"driver_id": 1}], ["driver_trips:fares"], now=at(10))
        assert online.to_dict() == {"driver_trips__fares": [12.0]}
