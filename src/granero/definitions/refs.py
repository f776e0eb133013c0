"""Feature references: ``view:feature`` strings or a feature service, resolved against the registry.

Both training retrieval and online serving resolve requests here, so they agree on what a
request means and fail with the same precise message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from granero.definitions.feature_service import event_columns_refusal
from granero.definitions.feature_view import FeatureView
from granero.definitions.repo_definitions import RepoDefinitions
from granero.errors import InvalidRequest, UnknownName


@dataclass(frozen=True)
class ViewFeatures:
    """The requested features of one view, in request order."""

    view: FeatureView
    features: tuple[str, ...]
    join_keys: dict[str, str]

    def column_names(self, full_names: bool = True) -> list[str]:
        """Output column per feature: ``view__feature``, or the bare name."""
        return [f"{self.view.name}__{f}" if full_names else f for f in self.features]


def parse_ref(ref: str) -> tuple[str, str]:
    """``"view:feature"`` -> ``("view", "feature")``; ``view:*`` means every feature."""
    view, sep, feature = ref.partition(":")
    if not sep or not view or not feature:
        raise InvalidRequest(f"feature reference {ref!r} must look like 'view:feature' (or 'view:*')")
    return view, feature


def resolve_features(
    defs: RepoDefinitions,
    features: list[str] | None = None,
    feature_service: str | None = None,
) -> list[ViewFeatures]:
    """Group the requested features by view, checking every name against the registry."""
    if (features is None) == (feature_service is None):
        raise InvalidRequest("give either feature references or a feature service, not both or neither")
    pairs = service_pairs(defs, feature_service) if feature_service else _ref_pairs(defs, features or [])
    if not pairs:
        raise InvalidRequest("no features requested")
    grouped: dict[str, list[str]] = {}
    for view_name, feature in pairs:
        if feature not in grouped.setdefault(view_name, []):
            grouped[view_name].append(feature)
    return [
        ViewFeatures(defs.feature_views[v], tuple(fs), defs.join_keys(defs.feature_views[v]))
        for v, fs in grouped.items()
    ]


def _ref_pairs(defs: RepoDefinitions, refs: list[str]) -> list[tuple[str, str]]:
    pairs = []
    outputs: dict[str, list[str]] = {}  # per view, once: an aggregate view builds its fields
    for ref in refs:
        view_name, feature = parse_ref(ref)
        view = defs.feature_views.get(view_name)
        if view is None:
            raise UnknownName(f"unknown feature view {view_name!r} in {ref!r}; known: {sorted(defs.feature_views)}")
        names = outputs.get(view_name) or outputs.setdefault(view_name, view.output_names)
        if feature == "*":
            pairs += [(view_name, f) for f in names]
        elif feature not in names:
            raise UnknownName(
                event_columns_refusal(view, [feature])
                or f"feature view {view_name!r} has no feature {feature!r}; it has {view.output_names}"
            )
        else:
            pairs.append((view_name, feature))
    return pairs


def service_pairs(defs: RepoDefinitions, name: str, views: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(view, feature) of each feature the service selects, a whole selection naming every
    output of its view; ``views`` looks views up by name (default: the feature views; on-demand
    requests pass the on-demand views too)."""
    service = defs.feature_services.get(name)
    if service is None:
        raise UnknownName(f"unknown feature service {name!r}; known: {sorted(defs.feature_services)}")
    views = defs.feature_views if views is None else views
    pairs = []
    for selection in service.features:
        view = views[selection.view_name]
        pairs += [(view.name, f) for f in (selection.features or view.output_names)]
    return pairs
