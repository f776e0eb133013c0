"""Code identity: what counts in the hash, and the loaded-vs-registered check."""

from __future__ import annotations

import pytest

from granero.definitions import RepoDefinitions
from granero.errors import TransformCodeChanged
from granero.on_demand import check_code_identity, library_drift, loaded_views, run_transform
from granero.repo.loader import load_repo
from tests.on_demand.repos import ON_DEMAND, on_demand_repo


def registered_copy(defs: RepoDefinitions) -> RepoDefinitions:
    """What the registry holds: the JSON form, without functions."""
    return RepoDefinitions.model_validate_json(defs.model_dump_json())


def source_hash(tmp_path, source: str) -> str:
    defs = load_repo(on_demand_repo(tmp_path, on_demand=source))
    return defs.on_demand_feature_views["driver_score"].code.source_hash


@pytest.mark.parametrize(("old", "new", "counts"), [
    ("SCALE = 2.0", "SCALE = 2.5", True),  # a constant the transform reaches through a helper
    ("return pc.multiply(values, SCALE)", "return pc.multiply(values, SCALE * 1)", True),  # a helper's body
    ('"trips_plus": pc.add(columns["trips"], 1)', '"trips_plus": pc.add(columns["trips"], 2)', True),
    ("SCALE = 2.0", "SCALE = 2.0\n\n\ndef unrelated():\n    return 1", False),  # code it never reaches
    ("import pyarrow.compute as pc", "import pyarrow.compute as pc\nimport math", False),
    ("SCALE = 2.0", "SCALE = 2.0  # a comment outside any function", False),
])
def test_what_counts_in_the_source_hash(tmp_path, old, new, counts):
    assert old in ON_DEMAND
    before = source_hash(tmp_path / "a", ON_DEMAND)
    assert before == source_hash(tmp_path / "same", ON_DEMAND)  # stable across loads and folders
    assert (source_hash(tmp_path / "b", ON_DEMAND.replace(old, new)) != before) is counts


def test_loaded_views_carry_the_repo_function_when_the_hash_matches(tmp_path):
    loaded = load_repo(on_demand_repo(tmp_path))
    registered = registered_copy(loaded)
    [view] = loaded_views(registered, loaded).values()
    assert view.transform is loaded.on_demand_feature_views["driver_score"].transform
    import pyarrow as pa

    out = run_transform(view, {"conv_rate": pa.array([0.5]), "trips": pa.array([3]), "distance_km": pa.array([2.0])})
    assert out["score"].to_pylist() == [2.0] and out["trips_plus"].to_pylist() == [4]


def test_a_transform_changed_without_apply_is_refused(tmp_path):
    registered = registered_copy(load_repo(on_demand_repo(tmp_path / "applied")))
    edited = load_repo(on_demand_repo(tmp_path / "edited", on_demand=ON_DEMAND.replace("SCALE = 2.0", "SCALE = 3.0")))
    with pytest.raises(TransformCodeChanged) as raised:
        loaded_views(registered, edited)
    text = str(raised.value)
    assert "'driver_score'" in text and "on_demand:score" in text and "is not the code applied" in text
    assert "granero apply" in text and "edited/on_demand.py" in text


def test_a_definition_changed_without_apply_is_refused(tmp_path):
    registered = registered_copy(load_repo(on_demand_repo(tmp_path / "applied")))
    edited = ON_DEMAND.replace('Field(name="trips_plus", dtype="int64")', 'Field(name="trips_plus", dtype="float64")')
    with pytest.raises(TransformCodeChanged, match="its definition in the repo .* differs from the one applied"):
        loaded_views(registered, load_repo(on_demand_repo(tmp_path / "edited", on_demand=edited)))


def test_a_registered_view_missing_from_the_files_is_refused(tmp_path):
    registered = registered_copy(load_repo(on_demand_repo(tmp_path / "applied")))
    without = load_repo(on_demand_repo(tmp_path / "other", on_demand="X = 1\n"))
    with pytest.raises(TransformCodeChanged, match="registered but not defined in the repo's files"):
        loaded_views(registered, without)


def test_library_versions_are_recorded_and_drift_reported_not_refused(tmp_path):
    loaded = load_repo(on_demand_repo(tmp_path))
    view = loaded.on_demand_feature_views["driver_score"]
    assert library_drift(view) == {}
    older = view.model_copy(update={"code": view.code.model_copy(update={"libraries": {"numpy": "1.0.0"}})})
    assert library_drift(older) == {"numpy": ("1.0.0", view.code.libraries["numpy"])}
    check_code_identity(older, view)  # the source is the same: served, drift reported by the caller
