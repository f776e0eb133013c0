"""Driver activity as time-window aggregates of the trip events (counts, fares, customers over the
last hour, day and week), identical in training sets and online (docs/aggregations.md)."""

from entities import driver

from granero import Aggregation, FeatureView, Field, FileSource

trip_events = FileSource(
    path="data/sources/trip_events",
    format="parquet",
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
)

driver_trips = FeatureView(
    entities=[driver],
    source=trip_events,
    # The event columns: stored offline one row per trip, read by the aggregations, not served.
    features=[
        Field(name="fare", dtype="float64"),
        Field(name="distance_km", dtype="float64"),
        Field(name="customer_id", dtype="int64"),
        Field(name="fare_per_km", dtype="float64"),
    ],
    transformations={"fare_per_km": "fare / nullif(distance_km, 0)"},
    filter="status = 'completed'",  # cancelled trips count nowhere
    aggregations=[
        Aggregation(column="driver_id", function="count", window="1h", name="trips_1h"),
        Aggregation(column="driver_id", function="count", window="24h", name="trips_24h"),
        Aggregation(column="driver_id", function="count", window="7d", name="trips_7d"),
        Aggregation(column="fare", function="sum", window="24h", name="fares_24h"),
        Aggregation(column="fare", function="mean", window="7d", name="fare_mean_7d"),
        Aggregation(column="fare", function="max", window="24h", name="fare_max_24h"),
        Aggregation(column="fare", function="stddev", window="7d", name="fare_stddev_7d"),
        Aggregation(column="fare_per_km", function="mean", window="7d", name="fare_per_km_7d"),
        Aggregation(column="customer_id", function="distinct_count", window="24h", name="customers_24h"),
        Aggregation(column="distance_km", function="last", window="24h", name="last_distance_km"),
    ],
    hop="5m",  # tiles of 5 minutes; the default for these windows would be 1m
    owner="marketplace@rides.example",
    description="Trips, fares and customers of each driver over the last hour, day and week.",
    tags={"domain": "supply"},
)
