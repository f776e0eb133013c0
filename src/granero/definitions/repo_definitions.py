"""Compiling a repo's definition objects into one validated, normalised set.

Users may reference entities and views by object and leave names to be derived from variable
names. Compilation names every object, replaces object references by names, and checks the set
as a whole. The result holds names only: it is what the registry stores and what jobs read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from granero.definitions.aggregation import check_aggregations
from granero.definitions.base import Definition, Model
from granero.definitions.entity import Entity
from granero.definitions.feature_service import FeatureSelection, FeatureService, event_columns_refusal
from granero.definitions.feature_view import FeatureView
from granero.definitions.on_demand import OnDemandFeatureView, check_on_demand, resolve_on_demand
from granero.definitions.permission import ANY, Permission
from granero.errors import DefinitionError

T = TypeVar("T", bound=Definition)

RESERVED_COLUMNS = ("event_timestamp", "created_timestamp", "event_date")
"""Columns every offline table carries; no feature or key may take these names."""


class RepoDefinitions(Model):
    """Every definition of a repo, by name, with references resolved to names."""

    entities: dict[str, Entity] = {}
    feature_views: dict[str, FeatureView] = {}
    feature_services: dict[str, FeatureService] = {}
    permissions: dict[str, Permission] = {}
    on_demand_feature_views: dict[str, OnDemandFeatureView] = {}

    def join_keys(self, view: FeatureView) -> dict[str, str]:
        """The view's join keys and dtypes, in entity order then key order."""
        keys: dict[str, str] = {}
        for entity_name in view.entity_names:
            keys.update(self.entities[entity_name].join_keys)
        return keys

    def all_objects(self) -> list[Definition]:
        return [*self.entities.values(), *self.feature_views.values(), *self.feature_services.values(),
                *self.permissions.values(), *self.on_demand_feature_views.values()]


def compile_definitions(found: Iterable[tuple[str, Definition]]) -> RepoDefinitions:
    """Name, normalise and validate ``(variable name, object)`` pairs found in a repo."""
    named = _name_objects(found)
    ref_names = {id(original): obj.name for original, obj in named}
    entities = [obj for _, obj in named if isinstance(obj, Entity)]
    views = [_resolve_view(obj, ref_names) for _, obj in named if isinstance(obj, FeatureView)]
    services = [_resolve_service(obj, ref_names) for _, obj in named if isinstance(obj, FeatureService)]
    permissions = [obj for _, obj in named if isinstance(obj, Permission)]
    served = {view.name: view.output_names for view in views}
    on_demand = [resolve_on_demand(obj, ref_names, served) for _, obj in named if isinstance(obj, OnDemandFeatureView)]
    _unique([*views, *on_demand])  # both kinds are selected by view name
    result = RepoDefinitions(
        entities=_unique(entities),
        feature_views=_unique(views),
        feature_services=_unique(services),
        permissions=_unique(permissions),
        on_demand_feature_views=_unique(on_demand),
    )
    check_references(result)
    return result


def _name_objects(found: Iterable[tuple[str, Definition]]) -> list[tuple[Definition, Definition]]:
    seen: dict[int, tuple[Definition, Definition]] = {}
    for variable, obj in found:
        if id(obj) not in seen and obj.kind in ("entity", "feature_view", "feature_service", "permission",
                                             "on_demand_feature_view"):
            seen[id(obj)] = (obj, obj if obj.name else obj.named(variable))
    return list(seen.values())


def _ref(obj: object, ref_names: dict[int, str]) -> str:
    if isinstance(obj, str):
        return obj
    return ref_names.get(id(obj)) or obj.name  # type: ignore[attr-defined]


def _with_origin(original: Definition, copy: Definition) -> Definition:
    copy._origin = original.origin
    return copy


def _resolve_view(view: FeatureView, ref_names: dict[int, str]) -> FeatureView:
    entities = [_ref(e, ref_names) for e in view.entities]
    return _with_origin(view, view.model_copy(update={"entities": entities}))  # type: ignore[return-value]


def _resolve_service(service: FeatureService, ref_names: dict[int, str]) -> FeatureService:
    selections = [
        FeatureSelection(view=_ref(s.view, ref_names), features=s.features)  # type: ignore[union-attr]
        for s in service.features
    ]
    return _with_origin(service, service.model_copy(update={"features": selections}))  # type: ignore[return-value]


def _unique(objects: list[T]) -> dict[str, T]:
    by_name: dict[str, T] = {}
    for obj in objects:
        if obj.name in by_name:
            first = by_name[obj.name]
            raise obj.fail("name", f"duplicate {obj.kind} name {obj.name!r}; also defined at {first.origin}")
        by_name[obj.name] = obj
    return by_name


def check_references(repo: RepoDefinitions) -> None:
    """Cross-definition checks: references exist, columns do not collide."""
    for view in repo.feature_views.values():
        _check_view(repo, view)
    for on_demand in repo.on_demand_feature_views.values():
        check_on_demand(repo, on_demand)
    for service in repo.feature_services.values():
        _check_service(repo, service)
    for permission in repo.permissions.values():
        _check_permission(repo, permission)


def _check_view(repo: RepoDefinitions, view: FeatureView) -> None:
    keys: dict[str, str] = {}
    for entity_name in view.entity_names:
        entity = repo.entities.get(entity_name)
        if entity is None:
            known = sorted(repo.entities)
            raise view.fail("entities", f"unknown entity {entity_name!r}; known entities: {known}")
        for key, dtype in entity.join_keys.items():
            if keys.get(key, dtype) != dtype:
                raise view.fail("entities", f"join key {key!r} has dtypes {keys[key]} and {dtype}")
            keys[key] = dtype
    for feature in view.features:
        if feature.name in keys:
            raise view.fail("features", f"feature {feature.name!r} collides with a join key")
        if feature.name in RESERVED_COLUMNS:
            raise view.fail("features", f"feature name {feature.name!r} is reserved")
    for column in view.partition_columns:
        if column not in keys and column not in view.feature_names:
            raise view.fail("partition_columns", f"{column!r} is neither a join key nor a feature")
    if view.is_aggregate:
        _check_aggregations(view, keys)


KEY_FUNCTIONS = ("count", "distinct_count")
"""What an aggregation may compute over a join key column (to count events or distinct keys)."""


def _check_aggregations(view: FeatureView, keys: dict[str, str]) -> None:
    """Columns known and typed for their functions; outputs clash with no key or reserved column."""
    columns = {**{f.name: f.dtype for f in view.features}, **keys}
    try:
        check_aggregations(view.aggregations, columns, taken=[*keys, *RESERVED_COLUMNS])
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        raise view.fail(field, message) from None
    for index, aggregation in enumerate(view.aggregations):
        if aggregation.column in keys and aggregation.function not in KEY_FUNCTIONS:
            raise view.fail(
                f"aggregations[{index}].function",
                f"{aggregation.function} of join key {aggregation.column!r}: a key column takes only "
                f"{', '.join(KEY_FUNCTIONS)}",
            )


def _check_service(repo: RepoDefinitions, service: FeatureService) -> None:
    for selection in service.features:
        view = repo.feature_views.get(selection.view_name) or repo.on_demand_feature_views.get(selection.view_name)
        if view is None:
            known = sorted([*repo.feature_views, *repo.on_demand_feature_views])
            raise service.fail("features", f"unknown feature view {selection.view_name!r}; known: {known}")
        unknown = sorted(set(selection.features or []) - set(view.output_names))
        if unknown:
            refusal = isinstance(view, FeatureView) and event_columns_refusal(view, unknown)
            raise service.fail("features", refusal or f"view {view.name!r} has no features {unknown}")


def _check_permission(repo: RepoDefinitions, permission: Permission) -> None:
    """Named resources exist: a typo would otherwise grant nothing, silently."""
    views = {**repo.feature_views, **getattr(repo, "on_demand_feature_views", {})}  # both are views
    for field, known in (("feature_views", views), ("feature_services", repo.feature_services)):
        unknown = sorted(set(getattr(permission, field)) - set(known) - {ANY})
        if unknown:
            raise permission.fail(field, f"unknown names {unknown}; known: {sorted(known)}")


__all__ = ["RESERVED_COLUMNS", "DefinitionError", "RepoDefinitions", "compile_definitions"]
