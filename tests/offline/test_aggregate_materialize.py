"""An aggregate view's offline table holds every event: full ties are two events, not one row.

A plain view over the same source keeps one row per (keys, event, created) (its rule); the
aggregate view must keep all of them, or counts and sums would silently shrink.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from granero.definitions import Aggregation, Entity, FeatureView, Field, FileSource
from tests.offline.conftest import BACKENDS, make_feature_store

pytestmark = pytest.mark.spark

AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WRITTEN = AT + timedelta(minutes=1)


def source(path) -> str:
    """Three events of driver 7 at the same (event, created) time: two identical, one not; one
    more event of driver 8 with a null created time, twice."""
    rows = [(7, AT, WRITTEN, 5.0), (7, AT, WRITTEN, 5.0), (7, AT, WRITTEN, 7.0), (8, AT, None, 1.5), (8, AT, None, 1.5)]
    drivers, events, created, fares = zip(*rows, strict=True)
    stamp = pa.timestamp("us", tz="UTC")
    table = pa.table({
        "driver_id": pa.array(drivers, pa.int64()),
        "at": pa.array(events, stamp),
        "written": pa.array(created, stamp),
        "fare": pa.array(fares, pa.float64()),
    })
    path.mkdir(parents=True)
    pq.write_table(table, path / "trips.parquet")
    return str(path)


def definitions(root) -> dict:
    driver = Entity(join_keys={"driver_id": "int64"})
    trips = FileSource(path=source(root / "trips"), timestamp_field="at", created_timestamp_field="written")
    fare = [Field(name="fare", dtype="float64")]
    return {
        "driver": driver,
        "trip_aggregates": FeatureView(
            entities=[driver], source=trips, features=fare, hop="1m",
            aggregations=[
                Aggregation(column="driver_id", function="count", window="1h", name="trips_1h"),
                Aggregation(column="fare", function="sum", window="1h"),
            ],
        ),
        "last_trip": FeatureView(entities=[driver], source=trips, features=fare, ttl="1d"),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_ties_are_kept_as_events(spark, tmp_path, backend):
    store = make_feature_store(tmp_path, definitions(tmp_path), backend)
    store.materialize(AT - timedelta(days=1), AT + timedelta(days=1), sync_online=False)
    table = store.offline_store.read("trip_aggregates").toPandas()
    stored = sorted(zip(table["driver_id"], table["fare"], strict=True))
    assert stored == [(7, 5.0), (7, 5.0), (7, 7.0), (8, 1.5), (8, 1.5)]
    assert store.offline_store.read("last_trip").count() == 2  # the plain view's rule: one per tie
    asked = pd.DataFrame({"driver_id": [7, 8, 9], "event_timestamp": [AT, AT, AT]})
    refs = ["trip_aggregates:trips_1h", "trip_aggregates:fare_sum_1h"]
    for engine in ("local", "spark"):
        got = store.get_historical_features_pandas(asked, refs, full_feature_names=False, engine=engine)
        assert got["trips_1h"].tolist() == [3, 2, 0], engine
        assert got["fare_sum_1h"].tolist() == [17.0, 3.0, 0.0], engine
