"""Every validation error names the file, the definition and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from granero import FeatureStore
from granero.errors import DefinitionError
from tests.repo_builder import VIEWS, standard_repo


def plan_error(tmp_path: Path, **overrides: str) -> str:
    store = FeatureStore(standard_repo(tmp_path / "repo", **overrides))
    with pytest.raises(DefinitionError) as caught:
        store.plan()
    return str(caught.value)


def assert_names(message: str, file: str, definition: str, field: str) -> None:
    assert f"{file}.py:" in message, message
    assert repr(definition) in message, message
    assert f"field {field!r}" in message, message


def test_unknown_dtype(tmp_path):
    message = plan_error(tmp_path, views=VIEWS.replace('dtype="int64"', 'dtype="int65"'))
    assert_names(message, "views", "driver_stats", "features")
    assert "unknown dtype 'int65'" in message


def test_negative_ttl(tmp_path):
    message = plan_error(tmp_path, views=VIEWS.replace('ttl="1d"', 'name="driver_stats", ttl=-60'))
    assert_names(message, "views", "driver_stats", "ttl")
    assert "ttl must be positive" in message


def test_zero_ttl(tmp_path):
    message = plan_error(tmp_path, views=VIEWS.replace('ttl="1d"', 'name="driver_stats", ttl="0s"'))
    assert_names(message, "views", "driver_stats", "ttl")


def test_transformation_that_does_not_parse(tmp_path):
    broken = VIEWS.replace('ttl="1d",', 'name="driver_stats", ttl="1d", transformations={"trips": "conv_rate *+/ 2"},')
    message = plan_error(tmp_path, views=broken)
    assert_names(message, "views", "driver_stats", "transformations")
    assert "does not parse as Spark SQL" in message and "'trips'" in message


def test_filter_that_does_not_parse(tmp_path):
    message = plan_error(tmp_path, views=VIEWS.replace('ttl="1d",', 'name="driver_stats", ttl="1d", filter="trips >",'))
    assert_names(message, "views", "driver_stats", "filter")


def test_duplicate_names(tmp_path):
    duplicate = VIEWS + "\nother = driver_stats.model_copy(update={'name': 'driver_stats'})\n"
    duplicate = duplicate.replace('ttl="1d"', 'name="driver_stats", ttl="1d"')
    duplicate += "other2 = FeatureView(name='driver_stats', entities=[driver], ttl='1d', " \
                 "source=FileSource(path='x', timestamp_field='ts'), features=[Field(name='x', dtype='int64')])\n"
    message = plan_error(tmp_path, views=duplicate)
    assert_names(message, "views", "driver_stats", "name")
    assert "duplicate feature_view name" in message and "also defined at" in message


def test_unknown_entity_reference(tmp_path):
    message = plan_error(tmp_path, views=VIEWS.replace("entities=[driver]", 'name="driver_stats", entities=["rider"]'))
    assert_names(message, "views", "driver_stats", "entities")
    assert "unknown entity 'rider'" in message


def test_unknown_feature_reference_in_service(tmp_path):
    services = 'from views import driver_stats\nfrom granero import FeatureService\n' \
               'ranking = FeatureService(name="ranking", features=[driver_stats[["speed"]]])\n'
    message = plan_error(tmp_path, services=services)
    assert_names(message, "services", "ranking", "features")
    assert "has no features ['speed']" in message


def test_unknown_view_reference_in_service(tmp_path):
    services = 'from granero import FeatureService, FeatureSelection\n' \
               'ranking = FeatureService(name="ranking", features=[FeatureSelection(view="nope")])\n'
    message = plan_error(tmp_path, services=services)
    assert_names(message, "services", "ranking", "features")
    assert "unknown feature view 'nope'" in message


def test_feature_colliding_with_join_key(tmp_path):
    views = VIEWS.replace('ttl="1d"', 'name="driver_stats", ttl="1d"').replace('name="trips"', 'name="driver_id"')
    message = plan_error(tmp_path, views=views)
    assert_names(message, "views", "driver_stats", "features")
    assert "collides with a join key" in message


def test_syntax_error_names_file_and_line(tmp_path):
    message = plan_error(tmp_path, views="x = 1\ndef broken(:\n")
    assert "views.py:2" in message and "syntax error" in message


def test_import_error_names_file_and_line(tmp_path):
    message = plan_error(tmp_path, views="x = 1\nimport not_a_module_anywhere\n")
    assert "views.py:2" in message and "ModuleNotFoundError" in message


def test_float_join_keys_are_refused(tmp_path):
    entities = 'from granero import Entity\ndriver = Entity(name="driver", join_keys={"driver_id": "float64"})\n'
    message = plan_error(tmp_path, entities=entities)
    assert_names(message, "entities", "driver", "join_keys")


@pytest.mark.parametrize(
    ("aggregations", "extra", "field", "words"),
    [
        ('[{"column": "trips", "function": "sum", "window": "1h"}]', 'ttl="1d", ', "ttl", "drop ttl=1d"),
        ('[{"column": "nope", "function": "sum", "window": "1h"}]', "", "aggregations[0].column", "unknown column"),
        ('[{"column": "trips", "function": "sum", "window": "90m"}]', 'hop="1h", ', "aggregations[0].window",
         "not a multiple of the hop 1h"),
        ('[{"column": "driver_id", "function": "max", "window": "1h"}]', "", "aggregations[0].function",
         "a key column takes only count"),
    ],
)
def test_aggregate_view_errors_name_file_definition_and_field(tmp_path, aggregations, extra, field, words):
    views = VIEWS.replace('ttl="1d",', f'name="driver_stats", {extra}aggregations={aggregations},')
    message = plan_error(tmp_path, views=views)
    assert_names(message, "views", "driver_stats", field)
    assert words in message
