"""A small aggregate view for registry, CLI and refs tests (definitions only, no data)."""

from __future__ import annotations

AGGREGATE_VIEW = '''
from granero import Entity, FeatureView, Field, FileSource
from granero.definitions.aggregation import Aggregation
driver = Entity(join_keys={"driver_id": "int64"})
driver_trips = FeatureView(
    entities=[driver],
    source=FileSource(path="data/trips", timestamp_field="event_timestamp"),
    features=[Field(name="fare", dtype="float64"), Field(name="distance_km", dtype="float32")],
    aggregations=[Aggregation(column="driver_id", function="count", window="1h", name="trips_1h"),
                  Aggregation(column="fare", function="mean", window="1d"),
                  Aggregation(column="distance_km", function="sum", window="1d")],
    hop="5m",
    tags={"team": "supply"},
)
'''
