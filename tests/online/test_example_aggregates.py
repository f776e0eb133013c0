"""The example repo's aggregate view (feature_repo/trips.py) end to end, on its generated data.

Training values (in process) are checked against a pandas oracle that reads the raw trip events
and applies the written rule itself (the view's filter and transformation, nulls skipped, the
sawtooth tail, nothing after t); online lookups at t are checked equal to training values at t.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from granero import FeatureStore
from granero.online.lookup import Status
from tests.conftest import DATA_END

VIEW = "driver_trips"
MATERIALIZED_FROM = DATA_END - timedelta(days=2)
"""What the materialized_repo fixture materialized: [DATA_END - 2d, DATA_END)."""


def events(repo) -> pd.DataFrame:
    """The raw source as the view reads it: completed trips, fare_per_km computed, inside the
    materialized interval (online and training both see exactly those)."""
    raw = pd.read_parquet(repo / "data" / "sources" / "trip_events")
    raw = raw[(raw.status == "completed") & (raw.event_timestamp >= MATERIALIZED_FROM)
              & (raw.event_timestamp < DATA_END)]
    distance = raw.distance_km.where(raw.distance_km != 0)
    return raw.assign(fare_per_km=raw.fare / distance)


def oracle(trips: pd.DataFrame, driver: int, t: pd.Timestamp, function: str, column: str, window: timedelta,
           hop: timedelta):
    """The written rule, brute force: tail(t) = floor_to_hop(t - W) <= event_timestamp <= t."""
    epoch = pd.Timestamp(0, tz="UTC")
    tail = epoch + ((t - window - epoch) // hop) * hop
    mine = trips[(trips.driver_id == driver) & (trips.event_timestamp >= tail) & (trips.event_timestamp <= t)]
    values = mine[column].dropna()
    if function == "count":
        return len(values)
    if function == "distinct_count":
        return values.nunique()
    if function == "sum":
        return float(values.sum())
    if values.empty or (function == "stddev" and len(values) < 2):
        return None
    if function == "last":
        latest = mine.dropna(subset=[column]).sort_values(["event_timestamp", "created", column])
        return float(latest[column].iloc[-1])
    return float({"mean": values.mean, "max": values.max, "stddev": lambda: values.std(ddof=1)}[function]())


def same(value, expected) -> bool:
    if expected is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return (expected is None) == (value is None or (isinstance(value, float) and math.isnan(value)))
    return math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12)


ASKED_AFTER_END = [timedelta(0), timedelta(minutes=30), timedelta(minutes=61), timedelta(hours=24, minutes=30),
                   timedelta(days=7, hours=2)]
"""When online lookups ask, after the materialized data ends: the value moves with the sawtooth
tail (the 1h, then the 24h window empties, then all) without a new sync."""


def entity_rows(repo) -> pd.DataFrame:
    """The example's training rows plus every driver (and one without trips) at DATA_END and at
    each time of ASKED_AFTER_END."""
    given = pd.read_parquet(repo / "data" / "trips.parquet")[["driver_id", "event_timestamp"]]
    drivers = [*range(1001, 1011), 9999]
    times = pd.Series([pd.Timestamp(DATA_END + d) for d in ASKED_AFTER_END for _ in drivers])
    after = pd.DataFrame({"driver_id": drivers * len(ASKED_AFTER_END),
                          "event_timestamp": times.astype(given.event_timestamp.dtype)})
    return pd.concat([given, after], ignore_index=True)


@pytest.fixture(scope="module")
def training(materialized_repo):
    with FeatureStore(materialized_repo) as store:
        view = store.registered().feature_views[VIEW]
        rows = entity_rows(materialized_repo)
        frame = store.get_historical_features_pandas(rows, [f"{VIEW}:*"], engine="local")
    return view, rows, frame


def test_training_values_follow_the_rule_on_the_raw_events(materialized_repo, training):
    view, rows, frame = training
    trips = events(materialized_repo)
    assert len(trips) > 100 and frame.shape[0] == len(rows)
    checked = 0
    for i, row in rows.iterrows():
        for a in view.aggregations:
            expected = oracle(trips, row.driver_id, row.event_timestamp, a.function, a.column, a.window,
                              view.resolved_hop)
            value = frame[f"{VIEW}__{a.name}"].iloc[i]
            value = None if value is pd.NA else (value.item() if isinstance(value, np.generic) else value)
            assert same(value, expected), (i, row.driver_id, row.event_timestamp, a.name, value, expected)
            checked += 1
    until_end = (rows.event_timestamp <= pd.Timestamp(DATA_END)).to_numpy()
    nonzero = (frame[f"{VIEW}__trips_24h"][until_end] > 0).sum()
    assert checked == len(rows) * len(view.aggregations) and nonzero > until_end.sum() // 2
    assert (frame[f"{VIEW}__trips_24h"][~until_end] < frame[f"{VIEW}__trips_7d"][~until_end]).any()


@pytest.mark.parametrize("after", ASKED_AFTER_END)
def test_online_lookups_at_t_equal_training_at_t(materialized_repo, training, after):
    view, rows, frame = training
    now = DATA_END + after
    asked = rows.index[rows.event_timestamp == pd.Timestamp(now)]
    with FeatureStore(materialized_repo) as store:
        online = store.get_online_features(
            [{"driver_id": int(rows.driver_id[i])} for i in asked], [f"{VIEW}:*"], now=now
        )
    for row, i in zip(online.rows, asked, strict=True):
        for value, a in zip(row, view.aggregations, strict=True):
            trained = frame[f"{VIEW}__{a.name}"].iloc[i]
            trained = None if pd.isna(trained) else trained.item() if isinstance(trained, np.generic) else trained
            assert value.status in (Status.PRESENT, Status.NULL_VALUE), (i, a.name, value)
            assert value.value == trained or (value.value is None and trained is None), (i, a.name, value, trained)
    assert len(asked) == 11
