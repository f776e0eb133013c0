"""Splitting a feature request into what is looked up and what is computed on demand.

A request (``view:feature`` references or a feature service) may name outputs of on-demand views
next to plain features. ``split_request`` answers, for serving and training alike:

- ``lookups``: the plain references to look up or join: the ones asked for, in order, then each
  input feature of the on-demand views that was not asked for (``hidden``: looked up only to
  feed a transform, never returned);
- ``on_demand``: per on-demand view, the outputs asked for;
- ``output``: every asked ``(view, feature)`` in request order, plain and on-demand mixed.

References to plain views are checked later by ``definitions.refs.resolve_features``, as always;
this module checks the on-demand ones with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from granero.definitions.on_demand import OnDemandFeatureView
from granero.definitions.refs import parse_ref, service_pairs
from granero.definitions.repo_definitions import RepoDefinitions
from granero.errors import InvalidRequest, UnknownName


@dataclass(frozen=True)
class OnDemandFeatures:
    """The requested outputs of one on-demand view, in request order."""

    view: OnDemandFeatureView
    features: tuple[str, ...]

    def column_names(self, full_names: bool = True) -> list[str]:
        return [f"{self.view.name}__{f}" if full_names else f for f in self.features]


@dataclass(frozen=True)
class SplitRequest:
    lookups: list[str]
    hidden: list[str]
    on_demand: list[OnDemandFeatures]
    output: list[tuple[str, str]]

    def output_columns(self, full_names: bool) -> list[str]:
        """The returned feature columns in request order: ``view__feature``, or the bare name."""
        return [f"{view}__{feature}" if full_names else feature for view, feature in self.output]


def split_request(
    defs: RepoDefinitions, features: list[str] | None = None, feature_service: str | None = None
) -> SplitRequest:
    """The request's lookups and on-demand outputs (``on_demand`` empty when it names none)."""
    if (features is None) == (feature_service is None):
        raise InvalidRequest("give either feature references or a feature service, not both or neither")
    if feature_service:
        pairs = service_pairs(defs, feature_service, {**defs.feature_views, **defs.on_demand_feature_views})
    else:
        pairs = _ref_pairs(defs, features or [])
    if not pairs:
        raise InvalidRequest("no features requested")
    on_demand = defs.on_demand_feature_views
    asked = _unique(pairs)
    grouped: dict[str, list[str]] = {}
    for view, feature in asked:
        if view in on_demand:
            grouped.setdefault(view, []).append(feature)
    requested = [OnDemandFeatures(on_demand[v], tuple(fs)) for v, fs in grouped.items()]
    lookups = [f"{v}:{f}" for v, f in asked if v not in on_demand]
    hidden = _unique([ref for ref in _input_refs(requested) if ref not in lookups])
    return SplitRequest(lookups + hidden, hidden, requested, asked)


def _ref_pairs(defs: RepoDefinitions, refs: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for ref in refs:
        view_name, feature = parse_ref(ref)
        view = defs.on_demand_feature_views.get(view_name)
        if view is None:  # a plain view: resolve_features checks it
            plain = defs.feature_views.get(view_name)
            every = plain and feature == "*"
            pairs += [(view_name, f) for f in plain.output_names] if every else [(view_name, feature)]
        elif feature == "*":
            pairs += [(view_name, f) for f in view.feature_names]
        elif feature not in view.feature_names:
            raise UnknownName(
                f"on-demand feature view {view_name!r} has no feature {feature!r}; it has {view.feature_names}"
            )
        else:
            pairs.append((view_name, feature))
    return pairs


def _input_refs(requested: list[OnDemandFeatures]) -> list[str]:
    return [
        f"{given.view_name}:{feature}"
        for od in requested for given in od.view.feature_inputs for feature in given.features or []
    ]


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))
