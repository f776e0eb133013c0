"""The facade's registry part: the repo's definitions, their diff with the registry, ``apply``,
and discovery of what is registered. Nothing here starts Spark or Redis."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from granero.definitions import Definition, Entity, FeatureService, FeatureView, RepoDefinitions
from granero.errors import BreakingChangeError, NotFound, RegistryError
from granero.registry import Change, RegistryVersion, breaking_changes, content_hash, diff_definitions
from granero.repo.loader import load_repo

if TYPE_CHECKING:
    from pathlib import Path

    from granero.access.facade import AccessCheck
    from granero.config import RepoConfig
    from granero.definitions.aggregation import Aggregation
    from granero.online.cleanup import OnlineCleanup
    from granero.online.on_demand import TransformCatalog
    from granero.registry import FileRegistry


@dataclass(frozen=True)
class Plan:
    """What ``apply`` would do: the changes, and the reasons it would refuse without force."""

    changes: list[Change]
    breaking: list[str]
    current_version: int | None
    definitions: RepoDefinitions
    online: OnlineCleanup | None = None
    """After ``apply`` removed feature views: what became of their online data."""

    @property
    def removed_views(self) -> list[str]:
        """The feature views (plain and aggregate, with online data) this plan removes."""
        return [c.name for c in self.changes if c.kind == "feature_view" and c.op == "removed"]


@dataclass(frozen=True)
class FeatureInfo:
    """One feature, for discovery (``granero list features``)."""

    view: str
    name: str
    dtype: str
    description: str
    owner: str
    tags: dict[str, str]
    aggregation: Aggregation | None = None
    """What an aggregate view's feature computes (None for a plain view's)."""


class RegistryMethods:
    """``FeatureStore``'s registry methods (granero.facade)."""

    repo_path: Path
    config: RepoConfig
    registry: FileRegistry
    access: AccessCheck

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
            self.access.require_apply(self.registry.current(), plan.definitions, plan.changes)
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

    @cached_property
    def transforms(self) -> TransformCatalog:
        """The repo's on-demand transforms, loaded from its files once per registry version and
        checked against the code ``apply`` recorded."""
        from granero.online.on_demand import TransformCatalog

        return TransformCatalog(self.load_definitions)

    def list_entities(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[Entity]:
        return _matching(self.registered().entities.values(), tags, owner)

    def list_feature_views(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[FeatureView]:
        return _matching(self.registered().feature_views.values(), tags, owner)

    def list_feature_services(
        self, tags: dict[str, str] | None = None, owner: str | None = None
    ) -> list[FeatureService]:
        return _matching(self.registered().feature_services.values(), tags, owner)

    def list_features(self, tags: dict[str, str] | None = None, owner: str | None = None) -> list[FeatureInfo]:
        """Every feature of every view, on-demand views' outputs included; tags match the
        feature's or its view's tags."""
        found, defs = [], self.registered()
        for view in [*defs.feature_views.values(), *defs.on_demand_feature_views.values()]:
            if owner and view.owner != owner:
                continue
            aggregations = {a.name: a for a in view.aggregations} if isinstance(view, FeatureView) else {}
            for feature in view.output_fields:
                if _has_tags({**view.tags, **feature.tags}, tags):
                    found.append(FeatureInfo(view.name, feature.name, feature.dtype, feature.description,
                                             view.owner, {**view.tags, **feature.tags},
                                             aggregations.get(feature.name)))
        return found

    def describe(self, name: str) -> Definition:
        """The registered entity, feature view, on-demand feature view or feature service called
        ``name``."""
        defs = self.registered()
        for section in (defs.entities, defs.feature_views, defs.on_demand_feature_views, defs.feature_services):
            if name in section:
                return section[name]
        raise NotFound(f"no entity, feature view, on-demand feature view or feature service named {name!r}")


def _has_tags(actual: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return all(actual.get(k) == v for k, v in (wanted or {}).items())


def _matching(objects: Any, tags: dict[str, str] | None, owner: str | None) -> list:
    return [o for o in objects if _has_tags(o.tags, tags) and (not owner or o.owner == owner)]
