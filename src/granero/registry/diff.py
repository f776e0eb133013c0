"""Pure diffing of two definition sets: what ``plan`` shows and what ``apply`` refuses.

No I/O here: both sides are RepoDefinitions values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from granero.definitions import FeatureView, RepoDefinitions
from granero.definitions.display import dump_as_written
from granero.definitions.duration import format_duration
from granero.registry.on_demand_diff import on_demand_breaking

Kind = Literal["entity", "feature_view", "feature_service", "permission", "on_demand_feature_view"]
_SECTIONS: dict[Kind, str] = {
    "entity": "entities",
    "feature_view": "feature_views",
    "feature_service": "feature_services",
    "permission": "permissions",
    "on_demand_feature_view": "on_demand_feature_views",
}


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    kind: Kind
    name: str
    op: Literal["added", "changed", "removed"]
    fields: list[FieldChange] = field(default_factory=list)


def diff_definitions(old: RepoDefinitions, new: RepoDefinitions) -> list[Change]:
    """Every added, changed and removed object, with field-level detail for changes."""
    changes: list[Change] = []
    for kind, section in _SECTIONS.items():
        before, after = getattr(old, section), getattr(new, section)
        for name in sorted(set(before) | set(after)):
            if name not in before:
                changes.append(Change(kind, name, "added"))
            elif name not in after:
                changes.append(Change(kind, name, "removed"))
            elif before[name] != after[name]:
                fields = _field_changes(dump_as_written(before[name]), dump_as_written(after[name]))
                changes.append(Change(kind, name, "changed", fields))
    return changes


def _field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        result = []
        for key in list(old) + [k for k in new if k not in old]:
            result += _field_changes(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        return result
    if _is_named_list(old) and _is_named_list(new):
        return _field_changes(_by_name(old), _by_name(new), path)
    return [] if old == new else [FieldChange(path, old, new)]


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def _by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


def breaking_changes(old: RepoDefinitions, new: RepoDefinitions) -> list[str]:
    """Reasons the new definitions would break data already stored under the old ones."""
    reasons = []
    for name, entity in old.entities.items():
        if name in new.entities and new.entities[name].join_keys != entity.join_keys:
            reasons.append(
                f"entity {name!r}: join keys change from {entity.join_keys} to "
                f"{new.entities[name].join_keys}; stored rows are keyed by the old ones"
            )
    for name, view in old.feature_views.items():
        if name not in new.feature_views:
            continue
        new_view = new.feature_views[name]
        if old.join_keys(view) != new.join_keys(new_view):
            reasons.append(f"feature view {name!r}: join keys change; its tables are keyed by the old ones")
        reasons += [f"feature view {name!r}: {reason}" for reason in _view_changes(view, new_view)]
    return reasons + on_demand_breaking(old, new)


def _view_changes(old: FeatureView, new: FeatureView) -> list[str]:
    if old.is_aggregate != new.is_aggregate:
        kinds = ("a plain view", "an aggregate view")
        return [
            f"changes from {kinds[old.is_aggregate]} to {kinds[new.is_aggregate]}; its offline table "
            "and online values were written for the old kind (a plain view keeps one row per key and times)"
        ]
    return [*_dtype_changes(old, new), *_hop_change(old, new), *_aggregate_changes(old, new)]


def _dtype_changes(old: FeatureView, new: FeatureView) -> list[str]:
    """Declared columns whose dtype changes; for an aggregate view, naming the aggregates that read
    them (their values and output dtypes follow the column's)."""
    reasons = []
    what = "event column" if old.is_aggregate else "feature"
    for feature in old.features:
        if feature.name in new.feature_names and new.feature(feature.name).dtype != feature.dtype:
            readers = [a.name for a in old.aggregations if a.column == feature.name]
            read_by = f"; aggregates {readers} read it" if readers else ""
            reasons.append(
                f"{what} {feature.name!r} changes dtype from {feature.dtype} to "
                f"{new.feature(feature.name).dtype}{read_by}"
            )
    return reasons


def _hop_change(old: FeatureView, new: FeatureView) -> list[str]:
    """The hop, declared or default (a new window can change the default), rounds every window's
    tail: each aggregate's values change, and the online ones (another schema) read as missing."""
    if not old.is_aggregate or old.resolved_hop == new.resolved_hop:
        return []
    return [
        f"hop changes from {format_duration(old.resolved_hop)} to {format_duration(new.resolved_hop)}; "
        f"aggregates {old.output_names} would serve other values than models were trained on (window "
        "tails round to the hop) and none online until the view is synced again"
    ]


_AGGREGATE_FIELDS = ("column", "function", "window")


def _aggregate_changes(old: FeatureView, new: FeatureView) -> list[str]:
    """An aggregate kept under its name but computed differently: the name would serve values that
    differ from the ones its consumers were trained on."""
    after = {a.name: a for a in new.aggregations}
    reasons = []
    for aggregation in (a for a in old.aggregations if a.name in after):
        changed = [
            f"{field} from {_shown(getattr(aggregation, field))} to {_shown(getattr(after[aggregation.name], field))}"
            for field in _AGGREGATE_FIELDS
            if getattr(aggregation, field) != getattr(after[aggregation.name], field)
        ]
        if changed:
            reasons.append(
                f"aggregate {aggregation.name!r} changes {' and '.join(changed)}; the name would serve other "
                "values than models were trained on (a new name adds it instead)"
            )
    return reasons


def _shown(value: object) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)
