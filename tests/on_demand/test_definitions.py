"""On-demand definitions: discovery, registry form, validation naming file and field."""

from __future__ import annotations

import json

import pytest

from granero.definitions import RepoDefinitions
from granero.errors import DefinitionError
from granero.registry.diff import breaking_changes, diff_definitions
from granero.repo.loader import load_repo
from tests.on_demand.repos import ON_DEMAND, on_demand_repo


def test_discovered_with_inputs_resolved_and_code_recorded(tmp_path):
    defs = load_repo(on_demand_repo(tmp_path))
    view = defs.on_demand_feature_views["driver_score"]
    assert view.transform is not None and view.mode == "vectorized"
    assert view.feature_inputs[0].view == "driver_stats"
    assert view.feature_inputs[0].features == ["conv_rate", "trips"]  # None resolved to the served ones
    assert [f.name for f in view.request_fields] == ["distance_km"]
    assert view.code.ref == "on_demand:score" and len(view.code.source_hash) == 64
    assert set(view.code.libraries) == {"pyarrow", "numpy"}


def test_registry_form_round_trips_without_the_function(tmp_path):
    defs = load_repo(on_demand_repo(tmp_path))
    text = defs.model_dump_json()
    stored = json.loads(text)["on_demand_feature_views"]["driver_score"]
    assert "transform" not in stored and "def score" not in text and stored["code"]["ref"] == "on_demand:score"
    back = RepoDefinitions.model_validate_json(text)
    assert back == defs
    assert back.on_demand_feature_views["driver_score"].transform is None
    assert back.on_demand_feature_views["driver_score"].code == defs.on_demand_feature_views["driver_score"].code


def test_selectable_in_feature_services(tmp_path):
    services = '''
    from views import driver_stats
    from on_demand import driver_score
    from granero import FeatureService
    ranking = FeatureService(features=[driver_stats[["conv_rate"]], driver_score[["score"]]])
    everything = FeatureService(features=[driver_score])
    '''
    defs = load_repo(on_demand_repo(tmp_path, services=services))
    assert [s.view_name for s in defs.feature_services["ranking"].features] == ["driver_stats", "driver_score"]
    assert defs.feature_services["everything"].features[0].view == "driver_score"


def test_service_selecting_an_unknown_output_is_refused(tmp_path):
    services = '''
    from on_demand import driver_score
    from granero import FeatureService
    ranking = FeatureService(features=[driver_score[["nope"]]])
    '''
    with pytest.raises(DefinitionError, match=r"services.py.*'features'.*driver_score.*\['nope'\]"):
        load_repo(on_demand_repo(tmp_path, services=services))


@pytest.mark.parametrize(("change", "message"), [
    ('inputs=[driver_stats, trip_request]', "inputs=['nope', trip_request]",),
    ('inputs=[driver_stats, trip_request]', 'inputs=[driver_stats[["conv_rate", "trips", "x"]], trip_request]'),
    ('inputs=[driver_stats, trip_request]',
     'inputs=[driver_stats, trip_request, RequestSource(name="again", fields=[Field(name="trips", dtype="int64")])]'),
])
def test_bad_inputs_name_file_and_field(tmp_path, change, message):
    source = ON_DEMAND.replace(change, message)
    with pytest.raises(DefinitionError) as raised:
        load_repo(on_demand_repo(tmp_path, on_demand=source))
    text = str(raised.value)
    assert "on_demand.py:" in text and "OnDemandFeatureView 'driver_score' field 'inputs[" in text
    assert any(word in text for word in ("unknown feature view 'nope'", "no features ['x']", "input 'trips'"))


@pytest.mark.parametrize(("body", "field", "words"), [
    ('return {"score": pc.cast(columns["trips"], "string"), "trips_plus": columns["trips"]}',
     "features", ["output 'score'", "declared float64", "string does not convert"]),
    ('return {"score": columns["conv_rate"], "trips_plus": pc.multiply(columns["conv_rate"], 1.5)}',
     "features", ["output 'trips_plus'", "declared int64", "without loss"]),
    ('raise RuntimeError("boom")', "transform", ["raised RuntimeError: boom"]),
    ('return {"score": columns["conv_rate"][:1], "trips_plus": columns["trips"]}',
     "transform", ["output 'score'", "1 values for a batch of 3 rows"]),
    ('return {"score": columns["conv_rate"]}', "transform", ["returned no output 'trips_plus'"]),
    ('return [columns["conv_rate"]]', "transform", ["returned a list"]),
    ('return {"score": [v.as_py() * 2 for v in columns["conv_rate"]], "trips_plus": columns["trips"]}',
     "transform", ["TypeError"]),  # fails on the probe's null
])
def test_transform_failing_on_the_probe_batch_names_file_and_field(tmp_path, body, field, words):
    source = ON_DEMAND.replace(
        '''    return {"score": scaled(pc.multiply(columns["conv_rate"], columns["distance_km"])),
            "trips_plus": pc.add(columns["trips"], 1)}''', f"    {body}")
    assert source != ON_DEMAND
    with pytest.raises(DefinitionError) as raised:
        load_repo(on_demand_repo(tmp_path, on_demand=source))
    text = str(raised.value)
    assert "on_demand.py:" in text and f"OnDemandFeatureView 'driver_score' field '{field}'" in text
    assert "probe batch" in text and "on_demand:score" in text
    for word in words:
        assert word in text


def test_decorator_form_and_row_mode(tmp_path):
    source = '''
    from views import driver_stats
    from granero import Field, on_demand_feature_view

    @on_demand_feature_view(inputs=[driver_stats[["trips"]]], features=[Field(name="double", dtype="int64")],
                            mode="row", owner="me")
    def doubled(row):
        """Twice the trips.

        Row by row."""
        return {"double": None if row["trips"] is None else row["trips"] * 2}
    '''
    view = load_repo(on_demand_repo(tmp_path, on_demand=source)).on_demand_feature_views["doubled"]
    assert view.mode == "row" and view.owner == "me" and view.code.ref == "on_demand:doubled"
    assert view.description == "Twice the trips."


def test_a_view_and_an_on_demand_view_may_not_share_a_name(tmp_path):
    source = ON_DEMAND.replace("OnDemandFeatureView(\n", "OnDemandFeatureView(\n    name='driver_stats',\n")
    with pytest.raises(DefinitionError, match="duplicate.*'driver_stats'"):
        load_repo(on_demand_repo(tmp_path, on_demand=source))


def test_a_lambda_without_source_is_refused():
    from granero import Field, OnDemandFeatureView, RequestSource

    request = RequestSource(name="r", fields=[Field(name="x", dtype="int64")])
    transform = eval("lambda columns: columns")  # no source file to read
    with pytest.raises(DefinitionError, match="field 'transform'.*source.*cannot be read"):
        OnDemandFeatureView(name="v", inputs=[request], features=[Field(name="x2", dtype="int64")], transform=transform)


def test_a_changed_transform_is_a_change_plan_shows_and_an_output_dtype_change_breaks(tmp_path):
    old = load_repo(on_demand_repo(tmp_path / "a"))
    changed = ON_DEMAND.replace("SCALE = 2.0", "SCALE = 3.0")
    new = load_repo(on_demand_repo(tmp_path / "b", on_demand=changed))
    [change] = diff_definitions(old, new)
    assert (change.kind, change.name, change.op) == ("on_demand_feature_view", "driver_score", "changed")
    assert [f.path for f in change.fields] == ["code.source_hash"]
    assert breaking_changes(old, new) == []
    retyped = ON_DEMAND.replace('Field(name="trips_plus", dtype="int64")', 'Field(name="trips_plus", dtype="float64")')
    reasons = breaking_changes(old, load_repo(on_demand_repo(tmp_path / "c", on_demand=retyped)))
    assert reasons == ["on-demand feature view 'driver_score': output 'trips_plus' changes dtype from int64 to "
                       "float64; models trained on it read the old dtype"]
