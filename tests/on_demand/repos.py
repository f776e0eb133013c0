"""Feature repos with on-demand views, for the on-demand tests."""

from __future__ import annotations

from pathlib import Path

from tests.repo_builder import standard_repo

ON_DEMAND = '''
import pyarrow.compute as pc
from views import driver_stats
from granero import Field, OnDemandFeatureView, RequestSource

SCALE = 2.0

trip_request = RequestSource(name="trip_request", fields=[Field(name="distance_km", dtype="float64")])


def scaled(values):
    return pc.multiply(values, SCALE)


def score(columns):
    return {"score": scaled(pc.multiply(columns["conv_rate"], columns["distance_km"])),
            "trips_plus": pc.add(columns["trips"], 1)}


driver_score = OnDemandFeatureView(
    inputs=[driver_stats, trip_request],
    features=[Field(name="score", dtype="float64"), Field(name="trips_plus", dtype="int64")],
    transform=score,
)
'''


def on_demand_repo(root: Path, on_demand: str = ON_DEMAND, **overrides: str) -> Path:
    """The standard repo plus ``on_demand.py`` (``ON_DEMAND`` unless given)."""
    return standard_repo(root, on_demand=on_demand, **overrides)
