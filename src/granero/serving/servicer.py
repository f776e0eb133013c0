"""The FeatureServing RPCs.

Every RPC runs inside ``rpc``, the one place errors become gRPC status codes: a GraneroError maps
by its ``grpc_code`` and nothing else; anything unexpected is a bug: INTERNAL with a message that
tells nothing of the internals, the traceback in the log and a count in
``granero_serving_unexpected_errors``, and the server keeps running. ``rpc`` also times the
call, counts it, writes the request's log line (JSON, DEBUG on success, WARNING on error) and
shortens what it echoes (``limits.shorten``). Request bytes that do not parse reach ``rpc`` as a
``MalformedMessage`` (``add_to_server`` parses them so), so they too get INVALID_ARGUMENT.

A lookup request is checked against ``serving.limits`` before anything else is done with it.

It is then answered in four steps: plan (cached per request shape and registry
version, with each view's reader and each feature's dtype), decode the entity rows (or key
columns) into key columns, one ``read_columns`` (the library ``lookup``'s validation and single
Redis round trip, numpy decoding, no FeatureValue or datetime), then encode: ``encode_columns``
extends one packed list per feature (COLUMNS), ``encode_rows`` writes the FeatureRows' wire bytes
from the same columns (ROWS, the default). A ROWS batch of fewer than ROW_BY_ROW_BELOW rows goes
row by row instead (``read_views``, ``encode_reads``: the same message, less fixed cost).
``check_deadline`` and ``lookup`` are methods so that a subclass can hold a request at those points
(the tests do, to drain and time out requests deterministically).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from granero import __version__
from granero.errors import GraneroError, InvalidRequest, NotFound
from granero.online.lookup import (
    ROW_BY_ROW_BELOW,
    ViewReader,
    column_length,
    read_columns,
    read_views,
    rows_to_columns,
)
from granero.registry import RegistryVersion
from granero.serving.columnar import decode_entity_columns, encode_columns
from granero.serving.config import ServingConfig
from granero.serving.convert import decode_entity_rows, encode_reads, status_name
from granero.serving.info import server_info_message, service_message, view_message
from granero.serving.limits import ServingLimits, shorten
from granero.serving.metrics import ServingMetrics
from granero.serving.on_demand import TransformHealth, on_demand_response, on_demand_view_message
from granero.serving.plan import RequestPlan, Selection, plan_request
from granero.serving.rows import encode_rows
from granero.serving.snapshot import RegistryFollower
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1 import serving_pb2_grpc

if TYPE_CHECKING:
    from granero.feature_store import FeatureStore

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FeatureServing"].full_name
PLAN_CACHE_SIZE = 1024

Handler = TypeVar("Handler", bound=Callable[..., Any])


class _Abort(Exception):
    """A status no GraneroError stands for (a request whose deadline passed)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class MalformedMessage(NamedTuple):
    """Request bytes that are no message of the method's request type (bad UTF-8 in a string,
    a truncated field...): gRPC answers a parser's exception with INTERNAL, so the parser
    returns this instead and ``rpc`` answers INVALID_ARGUMENT."""

    type_name: str
    problem: str


def rpc(handler: Handler) -> Handler:
    """Map errors to status codes by lookup, and record metrics and the request log line."""
    method = handler.__name__

    @functools.wraps(handler)
    def wrapper(self: FeatureServingServicer, request: Any, context: grpc.ServicerContext) -> Any:
        started, response = time.perf_counter(), None
        code, message = grpc.StatusCode.OK, ""
        try:
            if type(request) is MalformedMessage:
                raise InvalidRequest(f"the request is not a valid {request.type_name} message: "
                                     f"{request.problem}")
            response = handler(self, request, context)
        except GraneroError as error:
            code, message = grpc.StatusCode[error.grpc_code], str(error)
        except _Abort as abort:
            code, message = abort.code, abort.message
        except Exception:
            self.metrics.unexpected_errors.labels(method).inc()
            log.exception("%s failed unexpectedly", method, extra={"fields": {"method": method}})
            code = grpc.StatusCode.INTERNAL
            message = f"internal error in {method}; see the server log"
        if code is not grpc.StatusCode.OK:
            message = shorten(message, self.limits.max_error_bytes)
        self.record(method, code, message, time.perf_counter() - started, context)
        if code is not grpc.StatusCode.OK:
            context.abort(code, message)
        return response

    return wrapper  # type: ignore[return-value]


class FeatureServingServicer(serving_pb2_grpc.FeatureServingServicer):
    def __init__(self, store: FeatureStore, config: ServingConfig) -> None:
        """Reads the registry and builds the online store now (an embedded Redis starts here, not
        in the first request); RegistryError when nothing was applied yet."""
        self.store = store
        self.config = config
        self.limits: ServingLimits = config.limits
        self.metrics = ServingMetrics()
        self.registry = RegistryFollower(store.registry, config.registry_refresh_seconds)
        self._planner: tuple[int, Callable[[Selection, bool], RequestPlan]] | None = None
        self.metrics.registry_version.set(self.registry.current().version)
        store.online_store  # noqa: B018 (built for its side effect)
        self.transform_health = TransformHealth(self.metrics)
        self._planner_for(self.registry.current())  # on-demand code loaded and checked now

    # -- RPCs ------------------------------------------------------------------------------------

    @rpc
    def GetOnlineFeatures(
        self, request: pb.GetOnlineFeaturesRequest, context: grpc.ServicerContext
    ) -> pb.GetOnlineFeaturesResponse:
        selection = _selection(request)
        _check_limits(self.limits, selection)
        columnar = _columnar(request)
        entities = self.entities(request)
        plan = self.plan(request, selection)
        if plan.on_demand is not None:
            self.check_deadline(context)
            response, counts = on_demand_response(request, plan, entities, columnar, self.lookup,
                                                  self.limits)
            self.metrics.count_values({status_name(code): n for code, n in counts.items()})
            return response
        entities = _shaped(entities, columnar, plan.readers)
        if not columnar and not _count(entities):
            return pb.GetOnlineFeaturesResponse(feature_names=plan.feature_names)
        self.check_deadline(context)
        reads = self.lookup(plan.readers, entities)
        if columnar:
            response, counts = encode_columns(plan.feature_names, plan.readers, reads, plan.fillers)
        elif type(entities) is dict:
            response, counts = encode_rows(plan.feature_names, reads, plan.dtypes)
        else:
            response, counts = encode_reads(reads, plan.feature_names, plan.writers)
        self.metrics.count_values({status_name(code): n for code, n in counts.items()})
        return response

    @rpc
    def ListFeatureServices(
        self, request: pb.ListFeatureServicesRequest, context: grpc.ServicerContext
    ) -> pb.ListFeatureServicesResponse:
        defs = self.registry.current().definitions
        return pb.ListFeatureServicesResponse(
            services=[service_message(defs, s) for s in defs.feature_services.values()])

    @rpc
    def DescribeFeatureView(
        self, request: pb.DescribeFeatureViewRequest, context: grpc.ServicerContext
    ) -> pb.DescribeFeatureViewResponse:
        self.limits.check_name("name", request.name)
        defs = self.registry.current().definitions
        view = defs.feature_views.get(request.name)
        if view is None and request.name in defs.on_demand_feature_views:
            on_demand = defs.on_demand_feature_views[request.name]
            return pb.DescribeFeatureViewResponse(view=on_demand_view_message(defs, on_demand))
        if view is None:
            known = sorted(defs.feature_views)
            raise NotFound(f"no feature view named {request.name!r}; known: {known}")
        return pb.DescribeFeatureViewResponse(view=view_message(defs, view))

    @rpc
    def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetServerInfoResponse:
        return server_info_message(self.registry.current(), __version__)

    @rpc
    def PushFeatures(
        self, request: pb.PushFeaturesRequest, context: grpc.ServicerContext
    ) -> pb.PushFeaturesResponse:
        """``granero.push`` on the decoded columns (the interceptor checked the ``push`` action)."""
        from granero.push import push_rows
        from granero.push.validation import pushed_view
        from granero.serving.push import decoded_columns, target_name

        columns = decoded_columns(request, self.limits)
        to = target_name(request.to)
        defs = self.registry.current().definitions
        view = pushed_view(defs, request.feature_view)
        self.check_deadline(context)
        result = push_rows(defs, view, columns, self.store.push_target(), to=to,
                           batch_id=request.batch_id or None, max_rows=self.limits.max_push_rows)
        return pb.PushFeaturesResponse(rows=result.rows, online_rows=result.online_rows,
                                       batch_id=result.batch_id)

    # -- steps -----------------------------------------------------------------------------------

    def plan(self, request: pb.GetOnlineFeaturesRequest,
             selection: Selection | None = None) -> RequestPlan:
        """The cached plan of the request's shape under the current registry version."""
        full_names = not request.HasField("full_feature_names") or request.full_feature_names
        if selection is None:
            selection = _selection(request)
        return self._planner_for(self.registry.current())(selection, full_names)

    def check_deadline(self, context: grpc.ServicerContext) -> None:
        """Refuse to start the lookup for a caller that has already given up."""
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise _Abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                         "deadline exceeded before the online lookup")

    def entities(self, request: pb.GetOnlineFeaturesRequest) -> list[dict[str, Any]] | dict:
        """The request's entity rows (a list of rows) or key columns (a dict), within
        ``max_batch_size`` (rows are counted before they are decoded)."""
        if request.entities and request.entity_columns:
            raise InvalidRequest("give entity rows as entities or as entity_columns, not both")
        limit = self.limits.max_batch_size
        if request.entity_columns:
            for key in request.entity_columns:
                self.limits.check_name("entity_columns key", key)
            _check_batch_size(_longest_list(request.entity_columns.values()), limit)
            columns = decode_entity_columns(request.entity_columns)
            column_length(columns)  # InvalidRequest unless every column has the same length
            return columns
        _check_batch_size(len(request.entities), limit)
        return decode_entity_rows(request.entities)

    def lookup(self, readers: list[ViewReader], entities: list[dict[str, Any]] | dict) -> Any:
        """Key columns in: ``read_columns``' answer; entity rows in: ``read_views``'."""
        now = self.now_micros()
        if type(entities) is dict:
            return read_columns(self.store.online_store, readers, entities, now)
        return read_views(self.store.online_store, readers, entities, now)

    def now_micros(self) -> int:
        """The request time (UTC micros): ttls are judged and aggregate windows end there (an
        aggregate value's event timestamp); a method so tests can serve at chosen times."""
        return time.time_ns() // 1000

    def record(self, method: str, code: grpc.StatusCode, message: str, seconds: float,
               context: grpc.ServicerContext) -> None:
        self.metrics.observe_request(method, code.name, seconds)
        if code is grpc.StatusCode.OK and not log.isEnabledFor(logging.DEBUG):
            return
        fields = {"method": method, "code": code.name, "ms": round(seconds * 1000, 3),
                  "peer": context.peer()}
        if code is grpc.StatusCode.OK:
            log.debug("request", extra={"fields": fields})
        else:
            log.warning("request failed: %s", message, extra={"fields": fields})

    def _planner_for(self, version: RegistryVersion) -> Callable[[Selection, bool], RequestPlan]:
        planner = self._planner
        if planner is None or planner[0] != version.version:
            transforms = self.store.transforms.transforms(version.definitions)  # checked code
            self.transform_health.update(version.definitions, transforms)
            cached = functools.lru_cache(maxsize=PLAN_CACHE_SIZE)(
                functools.partial(plan_request, version.definitions, transforms=transforms))
            planner = self._planner = (version.version, cached)
            self.metrics.registry_version.set(version.version)
        return planner[1]


def _columnar(request: pb.GetOnlineFeaturesRequest) -> bool:
    if request.layout not in (pb.ROWS, pb.COLUMNS):
        raise InvalidRequest(f"unknown response layout {request.layout}; "
                             "use ROWS (0) or COLUMNS (1)")
    return request.layout == pb.COLUMNS


def _check_limits(limits: ServingLimits, selection: Selection) -> None:
    """The selection's count and names within ``limits``, before anything is decoded or
    planned (key column names are checked before they are decoded). Entity row key names are
    not checked: only the message size bounds them (they are read once per row, and echoed
    only through ``shorten``)."""
    if isinstance(selection, str):
        limits.check_name("feature_service", selection)
    else:
        limits.check_count("feature references", len(selection), "max_refs")
        limits.check_names("features.refs", selection)


def _longest_list(values: Any) -> int:
    """Elements in the longest list Value (0 for none), read before anything is decoded."""
    kinds = ((value, value.WhichOneof("kind")) for value in values)
    return max((len(getattr(value, kind).val) for value, kind in kinds
                if kind is not None and kind.endswith("_list_val")), default=0)


def _check_batch_size(size: int, limit: int) -> None:
    if size > limit:
        raise InvalidRequest(f"batch of {size} entity rows exceeds max_batch_size {limit}")


def _shaped(entities: list[dict[str, Any]] | dict, columnar: bool,
            readers: list[ViewReader]) -> list[dict[str, Any]] | dict:
    """Key columns for COLUMNS, and for ROWS batches of ROW_BY_ROW_BELOW rows or more (read and
    encoded column-wise); smaller ROWS batches stay rows, whose path costs less below that size.
    Rows become columns checked as ``read_views`` checks them."""
    if columnar or _count(entities) >= ROW_BY_ROW_BELOW:
        return rows_to_columns(readers, entities) if type(entities) is list else entities
    if type(entities) is dict:
        keys = list(entities)
        return [dict(zip(keys, values, strict=True))
                for values in zip(*entities.values(), strict=True)]
    return entities


def _count(entities: list[dict[str, Any]] | dict) -> int:
    return len(entities) if type(entities) is list else column_length(entities)


def _selection(request: pb.GetOnlineFeaturesRequest) -> Selection:
    which = request.WhichOneof("selection")
    if which == "features":
        return tuple(request.features.refs)
    if which == "feature_service":
        return request.feature_service
    raise InvalidRequest("give either feature references or a feature service, not both or neither")


def add_to_server(servicer: FeatureServingServicer, server: grpc.Server) -> None:
    """Register ``servicer``'s RPCs on ``server`` (as the generated ``add_..._to_server`` does),
    parsing requests with ``_lenient_parser``."""
    service: ServiceDescriptor = pb.DESCRIPTOR.services_by_name["FeatureServing"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=_lenient_parser(getattr(pb, method.input_type.name)),
            response_serializer=getattr(pb, method.output_type.name).SerializeToString,
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


def _lenient_parser(message_class: Any) -> Callable[[bytes], Any]:
    name = message_class.DESCRIPTOR.name

    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception as error:  # noqa: BLE001 (whatever the parser raises, the bytes are bad)
            return MalformedMessage(name, f"{type(error).__name__}: {error}")

    return parse
