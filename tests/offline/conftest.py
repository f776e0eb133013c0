"""Offline fixtures: stores built from definitions written in Python (no repo files needed)."""

from __future__ import annotations

from pathlib import Path

from granero.config import RepoConfig
from granero.definitions import compile_definitions
from granero.feature_store import FeatureStore
from granero.offline.delta import DeltaConfig
from granero.offline.parquet import ParquetConfig
from granero.online.embedded import EmbeddedRedisConfig
from granero.registry import RegistryConfig

BACKENDS = ["delta", "parquet"]


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
