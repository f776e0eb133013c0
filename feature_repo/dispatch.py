"""Dispatch features computed on demand: where the rider waits and where the driver is now arrive
with each request; the driver's acceptance history comes from the feature store."""

import pyarrow.compute as pc
from drivers import driver_hourly_stats

from granero import FeatureService, Field, RequestSource, on_demand_feature_view

EARTH_RADIUS_KM = 6371.0
TYPICAL_PICKUP_KM = 4.0
"""Beyond about this distance drivers accept markedly fewer offers."""

pickup_request = RequestSource(
    name="pickup_request",
    fields=[
        Field(name="pickup_lat", dtype="float64", description="Where the rider waits (degrees)."),
        Field(name="pickup_lon", dtype="float64"),
        Field(name="driver_lat", dtype="float64", description="The driver's position now (degrees)."),
        Field(name="driver_lon", dtype="float64"),
    ],
)


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance of Arrow columns of degrees (nulls stay null)."""
    lat1, lon1, lat2, lon2 = (pc.multiply(c, 0.017453292519943295) for c in (lat1, lon1, lat2, lon2))
    half_dlat = pc.sin(pc.divide(pc.subtract(lat2, lat1), 2.0))
    half_dlon = pc.sin(pc.divide(pc.subtract(lon2, lon1), 2.0))
    across = pc.multiply(pc.multiply(pc.cos(lat1), pc.cos(lat2)), pc.multiply(half_dlon, half_dlon))
    chord = pc.add(pc.multiply(half_dlat, half_dlat), across)
    return pc.multiply(2.0 * EARTH_RADIUS_KM, pc.asin(pc.sqrt(pc.min_element_wise(chord, 1.0))))


@on_demand_feature_view(
    inputs=[driver_hourly_stats[["acc_rate"]], pickup_request],
    features=[
        Field(name="pickup_distance_km", dtype="float64", description="Driver to rider, great circle."),
        Field(name="expected_acceptance", dtype="float64",
              description="acc_rate discounted by the pickup distance: acc_rate * 4 / (4 + km)."),
    ],
    owner="marketplace@rides.example",
    tags={"domain": "supply"},
)
def pickup(columns):
    """How far the driver is from the rider, and how likely that makes the driver to accept.

    Vectorized: one call for a request of any number of drivers, or for a whole training set.
    """
    distance = haversine_km(columns["driver_lat"], columns["driver_lon"], columns["pickup_lat"], columns["pickup_lon"])
    discount = pc.divide(TYPICAL_PICKUP_KM, pc.add(distance, TYPICAL_PICKUP_KM))
    return {"pickup_distance_km": distance, "expected_acceptance": pc.multiply(columns["acc_rate"], discount)}


dispatch_model = FeatureService(
    features=[driver_hourly_stats[["conv_rate", "acc_rate"]], pickup],
    description="Features of the dispatch model: which driver to offer a trip to.",
    owner="marketplace@rides.example",
)
