"""Feature services: the feature sets our models consume, by name."""

from customers import customer_profile
from drivers import driver_hourly_stats
from routes import route_stats
from trips import driver_trips

from granero import FeatureService

trip_eta_model = FeatureService(
    features=[
        driver_hourly_stats[["conv_rate", "acc_rate", "trips_per_hour"]],
        customer_profile,
        route_stats,
        driver_trips,  # every aggregate: trips, fares and customers over 1h / 24h / 7d
    ],
    description="Features of the trip ETA / acceptance model.",
    owner="ml-platform@rides.example",
)
