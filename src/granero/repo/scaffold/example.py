"""An example entity, feature view and service; edit or replace them with your own."""

from granero import Entity, FeatureService, FeatureView, Field, FileSource

user = Entity(join_keys={"user_id": "int64"}, description="A user of the product.")

user_activity = FeatureView(
    entities=[user],
    source=FileSource(path="data/sources/user_activity", timestamp_field="event_timestamp"),
    ttl="7d",
    features=[
        Field(name="sessions_7d", dtype="int64", description="Sessions in the last 7 days."),
        Field(name="minutes_7d", dtype="float64", description="Minutes active in the last 7 days."),
        Field(name="minutes_per_session", dtype="float64"),
    ],
    transformations={"minutes_per_session": "minutes_7d / nullif(sessions_7d, 0)"},
    description="Weekly activity of each user.",
)

activity_model = FeatureService(features=[user_activity], description="Features of the churn model.")
