"""feature_store.yaml: validation, backend unions, ${ENV} substitution, path resolution."""

from __future__ import annotations

import pytest

from granero.config import load_config
from granero.errors import ConfigError
from granero.offline.parquet import ParquetConfig
from granero.online.embedded import EmbeddedRedisConfig
from granero.online.redis import RedisConfig


def write(tmp_path, text):
    (tmp_path / "feature_store.yaml").write_text(text)
    return tmp_path


def test_defaults_are_embedded_and_local(tmp_path):
    config = load_config(write(tmp_path, "project: demo\n"))
    assert isinstance(config.online_store, EmbeddedRedisConfig)
    assert config.online_store.data_dir == str(tmp_path / "data" / "online")
    assert config.offline_store.type == "delta" and config.offline_store.path == str(tmp_path / "data" / "offline")
    assert config.spark.master == "local[*]"


def test_backends_are_chosen_by_type_and_env_is_substituted(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    config = load_config(write(tmp_path, """
project: demo
offline_store: {type: parquet, path: s3a://bucket/offline}
online_store: {type: redis, url: "rediss://:${REDIS_PASSWORD}@cache:6380/1", cluster: true}
spark: {master: "${SPARK_MASTER:-spark://master:7077}", conf: {spark.executor.instances: "4"}}
"""))
    assert isinstance(config.offline_store, ParquetConfig) and config.offline_store.path == "s3a://bucket/offline"
    assert isinstance(config.online_store, RedisConfig)
    assert config.online_store.url == "rediss://:s3cret@cache:6380/1" and config.online_store.cluster
    assert config.spark.master == "spark://master:7077"


def test_missing_env_var_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"online_store.url references \$\{NOPE_PASSWORD\}"):
        load_config(write(tmp_path, "project: d\nonline_store: {type: redis, url: 'redis://:${NOPE_PASSWORD}@h'}\n"))


@pytest.mark.parametrize("text, fragment", [
    ("project: d\nonline_store: {type: memcached}\n", "online_store"),
    ("project: d\nonline_store: {type: redis, urll: x}\n", "online_store.redis.urll"),
    ("project: d\nsurprise: 1\n", "surprise"),
    ("registry: {path: x}\n", "project"),
    ("project: 'has space'\n", "project"),
    ("project: d\nserving: {port: 70000}\n", "serving.port"),
])
def test_invalid_config_names_the_field(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert f"field '{fragment}" in str(caught.value) and "feature_store.yaml" in str(caught.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="granero init"):
        load_config(tmp_path)
