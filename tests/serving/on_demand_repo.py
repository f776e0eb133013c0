"""A served repo with on-demand views (vectorized, row mode, request values only, and transforms
that fail on chosen request values), on a database of its own of the session's redis-server.

Driver rows: 1 fresh, 2 fresh with a null conv_rate, 3 stale (2 hours against a 1-hour ttl),
4 absent. Routes: (1, "car") fresh. Request values that make ``fragile`` fail: fare 13.0 (it
raises), 99.0 (a string for a float64 output), 7.0 (a column of the wrong length).
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from granero.feature_store import FeatureStore
from tests.serving.conftest import DEFINITIONS as SERVING_DEFINITIONS
from tests.serving.conftest import write_rows

NOW = datetime.now(UTC)
FRESH = NOW - timedelta(minutes=1)
OLDER = NOW - timedelta(minutes=5)
STALE = NOW - timedelta(hours=2)

DEFINITIONS = {
    "entities.py": SERVING_DEFINITIONS["entities.py"],  # driver_id; zone and vehicle
    "views.py": '''
        from entities import driver, route
        from granero import FeatureView, Field, FileSource

        def source(name):
            return FileSource(path=f"data/{name}", timestamp_field="event_timestamp")

        driver_stats = FeatureView(
            entities=[driver], source=source("driver_stats"), ttl="1h",
            features=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int64"),
                      Field(name="since", dtype="timestamp")],
        )
        route_stats = FeatureView(
            entities=[route], source=source("route_stats"), ttl="1d",
            features=[Field(name="eta", dtype="float32")],
        )
    ''',
    "on_demand.py": '''
        import pyarrow as pa
        import pyarrow.compute as pc
        from granero import FeatureService, Field
        from granero.definitions import OnDemandFeatureView, RequestSource
        from views import driver_stats, route_stats

        trip = RequestSource(name="trip", fields=[
            Field(name="fare", dtype="float64"), Field(name="tag", dtype="string"),
            Field(name="stops", dtype="list<int32>")])
        fare_only = RequestSource(name="fare_only", fields=[Field(name="fare", dtype="float64")])

        def trip_math(columns):
            fare, trips = columns["fare"], columns["trips"]
            return {
                "fare_per_trip": pc.divide(fare, pc.add(pc.cast(trips, pa.float64()), 1.0)),
                "score": pc.multiply(columns["conv_rate"], fare),
                "eta_minutes": pc.multiply(columns["eta"], 60.0),
                "stop_count": pc.list_value_length(columns["stops"]).cast(pa.int64()),
                "since_day": pc.floor_temporal(columns["since"], unit="day"),
            }

        trip_features = OnDemandFeatureView(
            inputs=[driver_stats[["conv_rate", "trips", "since"]], route_stats, trip],
            features=[Field(name="fare_per_trip", dtype="float64"),
                      Field(name="score", dtype="float64"), Field(name="eta_minutes", dtype="float64"),
                      Field(name="stop_count", dtype="int64"),
                      Field(name="since_day", dtype="timestamp")],
            transform=trip_math,
        )

        def label_row(row):
            trips = row["trips"]
            return {"label": None if row["tag"] is None else f"{row['tag']}-{trips}"}

        trip_label = OnDemandFeatureView(
            inputs=[driver_stats[["trips"]], trip], features=[Field(name="label", dtype="string")],
            transform=label_row, mode="row",
        )

        def doubled(columns):
            return {"double_fare": pc.multiply(columns["fare"], 2.0)}

        echo = OnDemandFeatureView(inputs=[fare_only], features=[Field(name="double_fare",
                                   dtype="float64")], transform=doubled)

        def fail_on(columns):
            fare = columns["fare"]
            if pc.any(pc.equal(fare, 13.0)).as_py():
                raise ValueError("unlucky fare")
            if pc.any(pc.equal(fare, 99.0)).as_py():
                return {"checked": pa.array(["not a number"] * len(fare))}
            if pc.any(pc.equal(fare, 7.0)).as_py():
                return {"checked": pa.array([1.0] * (len(fare) + 1))}
            return {"checked": fare}

        fragile = OnDemandFeatureView(inputs=[fare_only], features=[Field(name="checked",
                                      dtype="float64")], transform=fail_on)

        trip_service = FeatureService(features=[driver_stats[["trips"]], trip_features])
        fragile_service = FeatureService(features=[fragile])
        echo_service = FeatureService(features=[echo])
    ''',
}

ROWS = {
    "driver_stats": [
        {"driver_id": 1, "event_timestamp": FRESH, "conv_rate": 0.5, "trips": 3, "since": OLDER},
        {"driver_id": 2, "event_timestamp": OLDER, "conv_rate": None, "trips": 0, "since": None},
        {"driver_id": 3, "event_timestamp": STALE, "conv_rate": 0.25, "trips": 9, "since": STALE},
    ],
    "route_stats": [{"zone": 1, "vehicle": "car", "event_timestamp": FRESH, "eta": 7.5}],
}


def write_repo(root: Path, redis_url: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        "project: on_demand_serving\n"
        f"online_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n")
    for name, source in DEFINITIONS.items():
        (root / name).write_text(textwrap.dedent(source))
    return root


def applied_store(root: Path, redis_url: str) -> FeatureStore:
    """The repo written, applied and its rows written online."""
    store = FeatureStore(write_repo(root, redis_url))
    store.apply()
    for view, rows in ROWS.items():
        write_rows(store, view, rows)
    return store
