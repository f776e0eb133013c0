"""Driver performance features, refreshed hourly from the trips pipeline."""

from entities import driver

from granero import FeatureView, Field, FileSource

driver_stats_source = FileSource(
    path="data/sources/driver_stats",
    format="parquet",
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
)

driver_hourly_stats = FeatureView(
    entities=[driver],
    source=driver_stats_source,
    ttl="2d",
    features=[
        Field(name="conv_rate", dtype="float64", description="Share of offers the driver accepted and completed."),
        Field(name="acc_rate", dtype="float64", description="Share of offers the driver accepted."),
        Field(name="avg_daily_trips", dtype="int64", description="Trips per day over the last week."),
        Field(name="trips_per_hour", dtype="float64", description="avg_daily_trips spread over 24h."),
        Field(name="is_reliable", dtype="bool", description="Accepts more than 80% of offers."),
    ],
    transformations={
        "trips_per_hour": "avg_daily_trips / 24.0",
        "is_reliable": "acc_rate > 0.8",
    },
    owner="marketplace@rides.example",
    description="Hourly driver quality statistics.",
    tags={"domain": "supply", "tier": "gold"},
)
