"""What a GetOnlineFeatures request means, worked out once per request shape.

A shape is the feature selection (references or a service) and the naming option; its plan is
pure data derived from one registry version, so the servicer caches it per version and a request
only pays for decoding keys, the lookup and encoding values.
"""

from __future__ import annotations

from dataclasses import dataclass

from granero.definitions import RepoDefinitions
from granero.definitions.refs import ViewFeatures, resolve_features
from granero.errors import InvalidRequest
from granero.online.lookup import ViewReader
from granero.online.on_demand import LookupPlan, Transforms, plan_lookup, selects_on_demand
from granero.serving.columnar import Filler, column_filler
from granero.serving.convert import Encoder, Writer, value_encoder, value_writer

Selection = tuple[str, ...] | str
"""Feature references (a tuple of ``view:feature``) or a feature service name."""


@dataclass(frozen=True)
class RequestPlan:
    views: list[ViewFeatures]
    feature_names: list[str]
    """Output names, in response order."""
    encoders: list[Encoder]
    readers: list[ViewReader]
    """Per view: how to read and decode it (codec, slot positions, ttl), built once."""
    writers: list[list[Writer]]
    """Per view, per requested feature: how to append its wire Value (ROWS layout)."""
    fillers: list[list[Filler]]
    """Per view, per requested feature: how to fill its FeatureColumn (COLUMNS layout)."""
    dtypes: list[list[str]]
    """Per view, per requested feature: its dtype (ROWS layout, ``serving.rows``)."""
    on_demand: LookupPlan | None = None
    """Set when the selection names on-demand views (``serving.on_demand`` answers it; then
    ``readers`` are what is read, and the other per-view fields follow the answer's views)."""


def plan_request(defs: RepoDefinitions, selection: Selection, full_names: bool,
                 transforms: Transforms | None = None) -> RequestPlan:
    """Resolve and check a selection; raises InvalidRequest with the resolver's precise message.
    ``transforms``: the on-demand views' loaded code (``online.on_demand.TransformCatalog``)."""
    refs, service = (None, selection) if isinstance(selection, str) else (list(selection), None)
    if selects_on_demand(defs, refs, service):
        lookup = plan_lookup(defs, transforms or {}, refs, service, full_names)
        fillers = [[column_filler(dtype) for dtype in dtypes] for dtypes in lookup.output_dtypes]
        return RequestPlan([], lookup.feature_names, [], lookup.readers, [], fillers,
                           lookup.output_dtypes, lookup)
    if isinstance(selection, str):
        views = resolve_features(defs, feature_service=selection)
    else:
        views = resolve_features(defs, features=list(selection))
    names = [name for v in views for name in v.column_names(full_names)]
    _check_unique(names)
    encoders = [value_encoder(v.view.output_field(f).dtype) for v in views for f in v.features]
    readers = [ViewReader.of(v) for v in views]
    writers = [[value_writer(v.view.output_field(f).dtype) for f in v.features] for v in views]
    dtypes = [[v.view.output_field(f).dtype for f in v.features] for v in views]
    fillers = [[column_filler(dtype) for dtype in view_dtypes] for view_dtypes in dtypes]
    return RequestPlan(views, names, encoders, readers, writers, fillers, dtypes)


def _check_unique(names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidRequest(f"feature names {duplicates} collide without view prefixes; "
                             "request full feature names")

