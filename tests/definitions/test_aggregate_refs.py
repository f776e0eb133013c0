"""Feature refs and services select an aggregate view's outputs, never its event columns."""

from __future__ import annotations

import pytest

from granero import FeatureStore
from granero.definitions.refs import resolve_features
from granero.errors import DefinitionError, UnknownName
from tests.aggregate_repo import AGGREGATE_VIEW
from tests.repo_builder import write_repo

SERVICE = '''
from views import driver_trips
from granero import FeatureService
{name} = FeatureService(features=[{selection}])
'''


def compiled(tmp_path, selection: str = "driver_trips"):
    service = SERVICE.format(name="eta", selection=selection)
    return FeatureStore(write_repo(tmp_path / "repo", views=AGGREGATE_VIEW, services=service)).load_definitions()


def selected(requested) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.view.name, v.features) for v in requested]


def test_refs_and_services_select_the_outputs(tmp_path):
    defs, outputs = compiled(tmp_path), ("trips_1h", "fare_mean_1d", "distance_km_sum_1d")
    assert selected(resolve_features(defs, ["driver_trips:*"])) == [("driver_trips", outputs)]
    assert selected(resolve_features(defs, ["driver_trips:fare_mean_1d"])) == [("driver_trips", ("fare_mean_1d",))]
    assert selected(resolve_features(defs, feature_service="eta")) == [("driver_trips", outputs)]
    picked = compiled(tmp_path / "picked", 'driver_trips[["trips_1h"]]')
    assert selected(resolve_features(picked, feature_service="eta")) == [("driver_trips", ("trips_1h",))]


@pytest.mark.parametrize("column", ["fare", "distance_km"])
def test_a_ref_to_an_event_column_is_refused_naming_view_and_outputs(tmp_path, column):
    defs = compiled(tmp_path)
    with pytest.raises(UnknownName) as caught:
        resolve_features(defs, [f"driver_trips:{column}"])
    assert str(caught.value) == (
        f"feature view 'driver_trips' is an aggregate view: ['{column}'] are event columns its aggregations "
        "read, not features; it serves ['trips_1h', 'fare_mean_1d', 'distance_km_sum_1d']"
    )
    with pytest.raises(UnknownName) as caught:
        resolve_features(defs, ["driver_trips:nope"])
    served = "['trips_1h', 'fare_mean_1d', 'distance_km_sum_1d']"
    assert str(caught.value) == f"feature view 'driver_trips' has no feature 'nope'; it has {served}"


def test_a_service_selecting_an_event_column_is_refused_at_plan(tmp_path):
    with pytest.raises(DefinitionError) as caught:
        compiled(tmp_path, 'driver_trips[["trips_1h", "fare"]]')
    message = str(caught.value)
    assert "services.py:" in message and "'eta'" in message and "field 'features'" in message, message
    assert "feature view 'driver_trips' is an aggregate view: ['fare'] are event columns" in message
    assert "it serves ['trips_1h', 'fare_mean_1d', 'distance_km_sum_1d']" in message
