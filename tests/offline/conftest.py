"""Offline fixtures: the shared SparkSession tuned for tiny Delta tables, and stores built from
definitions written in Python (no repo files needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from granero.config import RepoConfig
from granero.definitions import compile_definitions
from granero.feature_store import FeatureStore
from granero.offline.delta import DeltaConfig
from granero.offline.parquet import ParquetConfig
from granero.online.embedded import EmbeddedRedisConfig
from granero.registry import RegistryConfig

BACKENDS = ["delta", "parquet"]


TINY_DATA_CONF = {
    "spark.databricks.delta.snapshotPartitions": "2",  # Delta's default 50 tasks per log replay
    "spark.sql.codegen.wholeStage": "false",  # compiling code per plan costs more than tiny data
    "spark.sql.adaptive.enabled": "false",  # re-planning buys nothing on a few hundred rows
}


@pytest.fixture(scope="session")
def spark(spark):
    """The session-wide SparkSession, tuned for tests' tiny tables (semantics are unchanged)."""
    for key, value in TINY_DATA_CONF.items():
        spark.conf.set(key, value)
    return spark


def offline_config(kind: str, path: Path) -> DeltaConfig | ParquetConfig:
    return DeltaConfig(path=str(path)) if kind == "delta" else ParquetConfig(path=str(path))


def make_feature_store(root: Path, definitions: dict, offline: str = "delta") -> FeatureStore:
    """A FeatureStore under ``root`` whose registry holds ``definitions`` (name -> object)."""
    config = RepoConfig(
        project="offline_test",
        registry=RegistryConfig(path=str(root / "registry")),
        offline_store=offline_config(offline, root / "offline"),
        online_store=EmbeddedRedisConfig(data_dir=str(root / "online")),
    )
    store = FeatureStore(root, config=config)
    store.registry.write_version(config.project, compile_definitions(definitions.items()))
    return store
