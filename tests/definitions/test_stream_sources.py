"""Stream sources: refused clearly where they cannot work (naming file, view and field), and
registered, diffed and read back like every definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from granero import FeatureStore
from tests.definitions.test_validation import assert_names, plan_error
from tests.repo_builder import VIEWS, standard_repo

KAFKA = ('stream_source=KafkaSource(bootstrap_servers="kafka:9092", topic="drivers", '
         'schema="driver_id BIGINT, event_timestamp TIMESTAMP, conv_rate DOUBLE, trips BIGINT", '
         'timestamp_field="event_timestamp"{extra}),\n    ttl="1d"')


def streaming_views(extra: str = "") -> str:
    views = VIEWS.replace("FileSource\n", "FileSource, KafkaSource\n")
    return views.replace('ttl="1d"', KAFKA.format(extra=extra))


def test_protobuf_is_refused_at_definition_time(tmp_path: Path):
    message = plan_error(tmp_path, views=streaming_views(', format="protobuf"'))
    assert "views.py:" in message and "KafkaSource" in message and "field 'format'" in message
    assert "protobuf is not supported" in message and "spark-protobuf" in message


def test_avro_needs_a_record_schema(tmp_path: Path):
    message = plan_error(tmp_path, views=streaming_views(', format="avro"'))
    assert "avro schema must be JSON" in message


def test_owned_reader_options_are_refused(tmp_path: Path):
    message = plan_error(tmp_path, views=streaming_views(', options={"subscribe": "other"}'))
    assert "['subscribe'] are set by bootstrap_servers and topic" in message


def test_a_file_stream_source_must_be_delta(tmp_path: Path):
    views = VIEWS.replace('ttl="1d"', 'stream_source=FileSource(path="x", timestamp_field="t"),\n    ttl="1d"')
    message = plan_error(tmp_path, views=views)
    assert_names(message, "views", "driver_stats", "stream_source")
    assert "streams only as a Delta table" in message


def test_stream_source_is_registered_and_diffed(tmp_path: Path):
    repo = standard_repo(tmp_path / "repo", views=streaming_views())
    with FeatureStore(repo) as store:
        store.apply()
        source = store.registered().feature_views["driver_stats"].stream_source
        assert (source.type, source.topic) == ("kafka", "drivers")
        assert source.value_schema.startswith("driver_id BIGINT")
        (repo / "views.py").write_text(streaming_views().replace('topic="drivers"', 'topic="drivers_v2"'))
        changes = [str(change) for change in store.plan().changes]
        assert any("drivers_v2" in change for change in changes), changes


@pytest.mark.parametrize("interval", ["soon", "5", "-1 seconds"])
def test_trigger_interval_is_checked(tmp_path: Path, interval: str):
    from granero.config import load_config
    from granero.errors import ConfigError

    (tmp_path / "feature_store.yaml").write_text(f"project: p\nstreaming: {{trigger_interval: '{interval}'}}\n")
    with pytest.raises(ConfigError, match="streaming.trigger_interval"):
        load_config(tmp_path)
