"""The FeatureStore facade: one object that wires the configured backends together.

Backends are built once, lazily, from ``feature_store.yaml`` (or passed in), so that commands
that only touch the registry never start Spark or Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from granero.config import RepoConfig, load_config
from granero.definitions import Definition, Entity, FeatureService, FeatureView, RepoDefinitions
from granero.errors import BreakingChangeError, NotFound, RegistryError
from granero.registry import (
    Change,
    FileRegistry,
    RegistryVersion,
    breaking_changes,
    content_hash,
    diff_definitions,
)
from granero.repo.loader import load_repo

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Plan:
    """What ``apply`` would do: the changes, and the reasons it would refuse without force."""

    changes: list[Change]
    breaking: list[str]
    current_version: int | None
    definitions: RepoDefinitions


@dataclass(frozen=True)
class FeatureInfo:
    """One feature, for discovery (``granero list features``)."""

    view: str
    name: str
    dtype: str
    description: str
    owner: str
    tags: dict[str, str]


class FeatureStore:
    """Entry point of the Python API: ``FeatureStore("feature_repo").apply()``."""

    def __init__(self, repo_path: str | Path = ".", *, config: RepoConfig | None = None) -> None:
        self.repo_path = Path(repo_path).resolve()
        self.config = config or load_config(self.repo_path)
        self.registry = FileRegistry(self.config.registry.path)
        self._spark: SparkSession | None = None
        self._online: Any = None

    # -- registry ------------------------------------------------------------------------------

    def load_definitions(self) -> RepoDefinitions:
        """Import and validate the repo's definition files (nothing is written)."""
        return load_repo(self.repo_path)

    def plan(self) -> Plan:
        """Diff the repo's definitions against the registry, without writing anything."""
        new = self.load_definitions()
        current = self.registry.current()
        old = current.definitions if current else RepoDefinitions()
        return Plan(diff_definitions(old, new), breaking_changes(old, new), current and current.version, new)

    def apply(self, force: bool = False) -> tuple[Plan, RegistryVersion | None]:
        """Record the repo's definitions as a new registry version; None when nothing changed.

        Refuses changes that would break stored data (BreakingChangeError) unless ``force``.
        """
        with self.registry.locked():
            plan = self.plan()
            if plan.breaking and not force:
                reasons = "\n  ".join(plan.breaking)
                raise BreakingChangeError(f"apply refused, it would break stored data:\n  {reasons}\n"
                                          "re-run with --force once the affected tables are rebuilt")
            current = self.registry.current()
            if current and current.hash == content_hash(plan.definitions):
                return plan, None
            return plan, self.registry.write_version(self.config.project, plan.definitions)

    def registered(self) -> RepoDefinitions:
        """The definitions of the current registry version."""
        current = self.registry.current()
        if current is None:
            raise RegistryError(f"nothing applied yet in {self.registry.path}: run `granero apply` first")
        return current.definitions

    def list_entities(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[Entity]:
        return _matching(self.registered().entities.values(), tags, owner)

    def list_feature_views(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[FeatureView]:
        return _matching(self.registered().feature_views.values(), tags, owner)

    def list_feature_services(
        self, tags: dict[str, str] | None = None, owner: str | None = None
    ) -> list[FeatureService]:
        return _matching(self.registered().feature_services.values(), tags, owner)

    def list_features(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[FeatureInfo]:
        """Every feature of every view; tags match the feature's or its view's tags."""
        found = []
        for view in self.registered().feature_views.values():
            if owner and view.owner != owner:
                continue
            for feature in view.features:
                if _has_tags({**view.tags, **feature.tags}, tags):
                    found.append(FeatureInfo(view.name, feature.name, feature.dtype, feature.description,
                                             view.owner, {**view.tags, **feature.tags}))
        return found

    def describe(self, name: str) -> Definition:
        """The registered entity, feature view or feature service called ``name``."""
        defs = self.registered()
        for section in (defs.entities, defs.feature_views, defs.feature_services):
            if name in section:
                return section[name]
        raise NotFound(f"no entity, feature view or feature service named {name!r}")

    # -- backends ------------------------------------------------------------------------------

    @property
    def spark(self) -> SparkSession:
        """The SparkSession, started on first use from the ``spark:`` config."""
        if self._spark is None:
            from granero.offline.spark_session import get_spark

            self._spark = get_spark(self.config.spark)
        return self._spark

    # -- offline: materialization and training retrieval (offline engineer adds methods here) ---

    # -- online: sync, lookups and verification (online engineer adds methods here) -------------

    def close(self) -> None:
        """Release the online store (stopping an embedded Redis server this process started)."""
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_tags(actual: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return all(actual.get(k) == v for k, v in (wanted or {}).items())


def _matching(objects: Any, tags: dict[str, str] | None, owner: str | None) -> list:
    return [o for o in objects if _has_tags(o.tags, tags) and (not owner or o.owner == owner)]
