"""Pure diffing of two definition sets: what ``plan`` shows and what ``apply`` refuses.

No I/O here: both sides are RepoDefinitions values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from granero.definitions import RepoDefinitions
from granero.definitions.display import dump_as_written

Kind = Literal["entity", "feature_view", "feature_service"]
_SECTIONS: dict[Kind, str] = {
    "entity": "entities",
    "feature_view": "feature_views",
    "feature_service": "feature_services",
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
        for feature in view.features:
            if feature.name in new_view.feature_names and new_view.feature(feature.name).dtype != feature.dtype:
                reasons.append(
                    f"feature view {name!r}: feature {feature.name!r} changes dtype from "
                    f"{feature.dtype} to {new_view.feature(feature.name).dtype}"
                )
    return reasons
