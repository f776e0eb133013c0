"""Route-level demand features, keyed by the composite (pickup_zone, dropoff_zone) key."""

from entities import route

from granero import FeatureView, Field, FileSource

route_stats = FeatureView(
    entities=[route],
    source=FileSource(
        path="data/sources/route_stats",
        format="parquet",
        timestamp_field="window_end",
        created_timestamp_field="created",
    ),
    ttl="6h",
    features=[
        Field(name="avg_duration_min", dtype="float64"),
        Field(name="trips_last_hour", dtype="int64"),
        Field(name="surge_multiplier", dtype="float32"),
    ],
    owner="pricing@rides.example",
    tags={"domain": "pricing", "tier": "gold"},
)
