"""Serving on-demand features over gRPC: request values in, transform outputs beside the features.

A request whose selection names an on-demand view is planned by ``online.on_demand.plan_lookup``
(cached per shape like any plan). It is answered column-wise whatever its layout: key columns
and request values are decoded (``serving.request_context``), every view is read in the one
store round trip, each on-demand view runs its transform once for the batch, and the answers,
shaped as view reads, are encoded by ``encode_columns`` (COLUMNS) or ``encode_rows`` (ROWS).
A request without on-demand features never comes here.

Errors, all per request: a missing or mistyped request value is INVALID_ARGUMENT naming the
entity row and field; a transform that raises or returns a wrong length or dtype is
FAILED_PRECONDITION (``TransformError``) naming the view and output; so is a view whose loaded
code differs from the applied code (``TransformCodeChanged``). Never UNKNOWN or INTERNAL.

Code identity is also published (``TransformHealth``): per feature service, the standard health
service answers ``granero.feature_service.<name>`` NOT_SERVING while a transform it serves is
refused (SERVING otherwise), and ``granero_serving_transform_refused{view}`` is 1 for each
refused view. The server-wide health ("" and FeatureServing) is left to the online store: the
other features are still served.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from granero.errors import InvalidRequest
from granero.online.lookup import ViewColumns, column_length, rows_to_columns
from granero.online.on_demand import LookupPlan, Transforms, refused_views
from granero.serving.columnar import encode_columns
from granero.serving.request_context import (
    check_column_sizes,
    decode_request_columns,
    decode_request_rows,
)
from granero.serving.rows import encode_rows
from granero.serving.v1 import serving_pb2 as pb

if TYPE_CHECKING:
    from grpc_health.v1.health import HealthServicer

    from granero.definitions import RepoDefinitions
    from granero.definitions.on_demand import OnDemandFeatureView
    from granero.online.lookup import ViewReader
    from granero.serving.limits import ServingLimits
    from granero.serving.metrics import ServingMetrics
    from granero.serving.plan import RequestPlan

log = logging.getLogger(__name__)

SERVICE_HEALTH_PREFIX = "granero.feature_service."
Reader = Callable[[list["ViewReader"], dict[str, list[Any]]], list[ViewColumns]]


def on_demand_response(
    request: pb.GetOnlineFeaturesRequest, plan: RequestPlan, entities: list[dict[str, Any]] | dict,
    columnar: bool, read: Reader, limits: ServingLimits,
) -> tuple[pb.GetOnlineFeaturesResponse, Counter[int] | dict[int, int]]:
    """The response to a request with on-demand features, and its values' status counts."""
    lookup: LookupPlan = plan.on_demand  # type: ignore[assignment]
    values = request_values(request, limits)
    count, keys = _key_columns(entities, lookup.readers, values)
    if not count and not columnar:
        return pb.GetOnlineFeaturesResponse(feature_names=lookup.feature_names), {}
    reads = read(lookup.readers, keys) if count and lookup.readers else \
        [_no_rows(reader) for reader in lookup.readers]
    answers = lookup.answer(reads, values, count)
    if columnar:
        return encode_columns(lookup.feature_names, lookup.outputs, answers, plan.fillers)
    return encode_rows(lookup.feature_names, answers, lookup.output_dtypes)


def request_values(request: pb.GetOnlineFeaturesRequest, limits: ServingLimits) -> dict[str, list]:
    """The request's values column-wise: from its entity rows, or from ``request_columns``."""
    if request.entities and request.request_columns:
        raise InvalidRequest("with entity rows, give request values in each row's request_values, "
                             "not in request_columns")
    if request.entities:
        return decode_request_rows(request.entities)
    check_column_sizes(request.request_columns, "request_columns", limits, "max_batch_size")
    return decode_request_columns(request.request_columns)


def _key_columns(entities: list[dict[str, Any]] | dict, readers: Sequence[ViewReader],
                 values: dict[str, list]) -> tuple[int, dict[str, list[Any]]]:
    """The batch's size and its join key columns. Entity rows count themselves; key columns
    are counted with the request columns (a request of request values only has no keys)."""
    if type(entities) is list:
        return len(entities), rows_to_columns(readers, entities)
    count = column_length({**entities, **values})
    return count, entities  # type: ignore[return-value]


def _no_rows(reader: ViewReader) -> ViewColumns:
    wanted = len(reader.wanted)
    return ViewColumns([], [], [[] for _ in range(wanted)], [[] for _ in range(wanted)])


# -- describing an on-demand view ----------------------------------------------------------------


def on_demand_view_message(defs: RepoDefinitions, view: OnDemandFeatureView) -> pb.FeatureViewInfo:
    """DescribeFeatureView of an on-demand view: its input views' join keys, its outputs as
    features, its request fields."""
    keys: dict[str, str] = {}
    for given in view.feature_inputs:
        keys.update(defs.join_keys(defs.feature_views[given.view_name]))
    return pb.FeatureViewInfo(
        name=view.name, description=view.description, owner=view.owner, tags=view.tags,
        join_keys=[pb.Column(name=k, dtype=d) for k, d in keys.items()],
        features=[pb.Column(name=f.name, dtype=f.dtype, description=f.description, tags=f.tags)
                  for f in view.features],
        online=True, on_demand=True,
        request_fields=[pb.Column(name=f.name, dtype=f.dtype, description=f.description)
                        for f in view.request_fields],
    )


# -- code identity: health and metric -------------------------------------------------------------


class TransformHealth:
    """Publishes which on-demand transforms are refused, per registry version (see the module
    docstring); health is set once ``attach`` gives the health service."""

    def __init__(self, metrics: ServingMetrics) -> None:
        from prometheus_client import Gauge

        self.refused = Gauge(
            "granero_serving_transform_refused",
            "1 while an on-demand view's loaded transform is refused (its code differs from the "
            "code applied, or the repo's files do not load), by view.",
            ["view"], registry=metrics.registry,
        )
        self._health: HealthServicer | None = None
        self._statuses: dict[str, bool] = {}
        self._views: set[str] = set()

    def update(self, defs: RepoDefinitions, transforms: Transforms) -> None:
        refused = refused_views(transforms)
        for name in self._views - set(transforms):
            self.refused.remove(name)
        self._views = set(transforms)
        for name in transforms:
            self.refused.labels(name).set(int(name in refused))
            if name in refused:
                log.error("on-demand view %s is not served: %s", name, refused[name])
        self._statuses = {service.name: not any(s.view_name in refused for s in service.features)
                          for service in defs.feature_services.values()}
        self._publish()

    def attach(self, health: HealthServicer) -> None:
        self._health = health
        self._publish()

    def _publish(self) -> None:
        if self._health is None:
            return
        from granero.serving.health import NOT_SERVING, SERVING

        for service, ok in self._statuses.items():
            self._health.set(SERVICE_HEALTH_PREFIX + service, SERVING if ok else NOT_SERVING)

