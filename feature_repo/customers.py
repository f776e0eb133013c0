"""Customer profile features, from the daily CRM snapshot."""

from entities import customer

from granero import FeatureView, Field, FileSource

customer_profile = FeatureView(
    entities=[customer],
    source=FileSource(
        path="data/sources/customer_profile",
        format="parquet",
        timestamp_field="event_timestamp",
    ),
    ttl="30d",
    features=[
        Field(name="current_balance", dtype="float64"),
        Field(name="lifetime_trip_count", dtype="int64"),
        Field(name="avg_passenger_count", dtype="float64"),
        Field(name="segment", dtype="string", description="Value segment derived from lifetime trips."),
    ],
    transformations={
        "segment": "CASE WHEN lifetime_trip_count >= 100 THEN 'frequent' "
        "WHEN lifetime_trip_count >= 10 THEN 'regular' ELSE 'new' END",
    },
    filter="current_balance IS NOT NULL OR lifetime_trip_count IS NOT NULL",
    owner="growth@rides.example",
    tags={"domain": "demand"},
)
