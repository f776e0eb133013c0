"""A Python client of a Granero server, returning the library's own types.

``Client("host:6566").get_online_features(...)`` returns the same ``OnlineResult`` as
``FeatureStore.get_online_features``, so code can switch between in-process and remote lookups.
It sends entity key columns and asks for the COLUMNS response layout, the cheaper one to build,
send and read (see ``granero.serving.columnar``).
gRPC errors are translated here, once, into Granero errors.

Load spreading: grpc shares one TCP connection between all channels of a process that have equal
options, and a server's processes (``granero serve --workers N``) or a Service's pods are chosen
per *connection*. So a client opens ``connections`` channels, each with a private subchannel
pool (its own TCP connection), and takes them in turn per call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from granero.definitions.refs import parse_ref
from granero.errors import (
    GraneroError,
    InvalidRequest,
    NotFound,
    OnlineStoreUnavailable,
    PermissionDenied,
    Unauthenticated,
    UnknownName,
)
from granero.online.lookup import OnlineResult
from granero.push.writer import PushResult
from granero.serving.columnar import decode_columns_response, encode_key_columns
from granero.serving.convert import encode_entity_rows
from granero.serving.info import (
    FeatureServiceInfo,
    FeatureViewInfo,
    ServerInfo,
    server_info,
    service_info,
    view_info,
)
from granero.serving.request_context import set_request_values
from granero.serving.tls import ClientTls, channel_credentials, channel_options
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub

DEFAULT_TARGET = "127.0.0.1:6566"
DEFAULT_CONNECTIONS = 4
"""Enough to reach both processes of ``--workers 2`` most of the time (SO_REUSEPORT picks a
process per connection by hash), few enough to cost nothing worth counting."""

_ERRORS: dict[grpc.StatusCode, type[GraneroError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: OnlineStoreUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: OnlineStoreUnavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}
"""Anything else becomes a plain GraneroError carrying the status code's name."""

EntityRows = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]


class Client:
    """Connects lazily; every call has ``timeout`` seconds (None: no deadline).

    ``connections`` channels (each its own TCP connection) take the calls in turn, so one
    client spreads its load over a server's worker processes or over the pods behind a proxy.
    """

    def __init__(self, target: str = DEFAULT_TARGET, timeout: float | None = 5.0,
                 *, max_message_bytes: int = 64 * 1024 * 1024,
                 connections: int = DEFAULT_CONNECTIONS, tls: ClientTls | None = None,
                 token: str | None = None) -> None:
        """``tls``: speak TLS (mTLS with a client certificate); None: plain text. ``token``: an
        API token or a JWT, sent as ``authorization: Bearer`` metadata with every call."""
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
            raise InvalidRequest(f"connections must be a whole number >= 1, got {connections!r}")
        self.target = target
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channels = [_channel(target, max_message_bytes, tls) for _ in range(connections)]
        self._stubs = itertools.cycle([FeatureServingStub(c) for c in self._channels])

    @property
    def connections(self) -> int:
        return len(self._channels)

    def get_online_features(
        self,
        entity_rows: EntityRows,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        full_feature_names: bool = True,
        request_data: Any = None,
    ) -> OnlineResult:
        """Latest values per entity row: rows as dicts, or columns as ``{key: [values...]}``.
        ``request_data``: the on-demand features' request values, as for
        ``FeatureStore.get_online_features`` (field -> values, or a dict per entity row)."""
        if (features is None) == (feature_service is None):
            raise InvalidRequest(
                "give either feature references or a feature service, not both or neither")
        request = pb.GetOnlineFeaturesRequest(full_feature_names=full_feature_names,
                                              layout=pb.COLUMNS)
        _set_entities(request, entity_rows)
        if request_data is not None:
            set_request_values(request, request_data)
        if features is not None:
            request.features.refs.extend(features)
        else:
            request.feature_service = feature_service  # type: ignore[assignment]
        return decode_columns_response(self._call("GetOnlineFeatures", request))

    def push(self, view: str, rows: Any, *, to: str = "online_and_offline",
             batch_id: str | None = None) -> PushResult:
        """``FeatureStore.push`` on the server (PushFeatures): the same rows, checks and result.
        Give a ``batch_id`` to retry a push safely with rows that may differ in order."""
        from granero.push.rows import as_table
        from granero.serving.push import push_request

        table = as_table(rows, view)
        columns = {name: table[name].to_pylist() for name in table.column_names}
        response = self._call("PushFeatures", push_request(view, columns, to, batch_id))
        return PushResult(view, response.rows, response.online_rows, response.batch_id,
                          landed=to != "online" and response.rows > 0)

    def list_feature_services(self) -> list[FeatureServiceInfo]:
        response = self._call("ListFeatureServices", pb.ListFeatureServicesRequest())
        return [service_info(s) for s in response.services]

    def describe_feature_view(self, name: str) -> FeatureViewInfo:
        """Raises NotFound when the server's registry has no such view."""
        request = pb.DescribeFeatureViewRequest(name=name)
        return view_info(self._call("DescribeFeatureView", request).view)

    def server_info(self) -> ServerInfo:
        return server_info(self._call("GetServerInfo", pb.GetServerInfoRequest()))

    def join_keys(
        self, features: list[str] | None = None, feature_service: str | None = None
    ) -> dict[str, str]:
        """Join key -> dtype for every key the request needs, per the server's registry."""
        keys: dict[str, str] = {}
        for view in self.request_views(features, feature_service):
            keys.update(view.join_keys)
        return keys

    def request_views(
        self, features: list[str] | None = None, feature_service: str | None = None
    ) -> list[FeatureViewInfo]:
        """The server's description of each view the request reads; raises UnknownName (or
        NotFound, from the server) for a service, view or feature it does not hold."""
        if feature_service is not None:
            services = {s.name: s for s in self.list_feature_services()}
            if feature_service not in services:
                raise UnknownName(f"unknown feature service {feature_service!r}; "
                                  f"known: {sorted(services)}")
            features = services[feature_service].features
        refs = [parse_ref(ref) for ref in features or []]
        views = {name: self.describe_feature_view(name) for name in dict.fromkeys(v for v, _ in refs)}
        for name, feature in refs:
            known = [column.name for column in views[name].features]
            if feature != "*" and feature not in known:
                raise UnknownName(f"feature view {name!r} has no feature {feature!r}; it has {known}")
        return list(views.values())

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        """On the next connection in turn (``next`` on a cycle is atomic: threads may share)."""
        call: Callable[..., Any] = getattr(next(self._stubs), method)
        try:
            return call(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise _translate(error, self.target) from None


def _channel(target: str, max_message_bytes: int, tls: ClientTls | None) -> grpc.Channel:
    """A channel with a subchannel pool of its own: a TCP connection no other channel shares."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.use_local_subchannel_pool", 1),
        *channel_options(tls),
    ]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, channel_credentials(tls), options=options)


def _translate(error: grpc.RpcError, target: str) -> GraneroError:
    """The server's own message for request errors; transport errors also name the target."""
    code, details = error.code(), error.details()  # type: ignore[attr-defined]
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.PERMISSION_DENIED):
        return _ERRORS[code](details)
    return _ERRORS.get(code, GraneroError)(f"{target}: {code.name}: {details}")


def _set_entities(request: pb.GetOnlineFeaturesRequest, entity_rows: EntityRows) -> None:
    """Key columns when every key's values share one type (one message per key), else rows."""
    rows = _as_rows(entity_rows)
    keys = list(rows[0]) if rows else []
    if all(type(row) is dict and list(row) == keys for row in rows):
        columns = encode_key_columns({key: [row[key] for row in rows] for key in keys})
        if columns:
            for key, column in columns.items():
                request.entity_columns[key].CopyFrom(column)
            return
    request.entities.extend(encode_entity_rows(rows))


def _as_rows(entity_rows: EntityRows) -> list[Mapping[str, Any]]:
    """Rows as given, or columns ``{key: [v0, v1...]}`` turned into rows."""
    if not isinstance(entity_rows, Mapping):
        return list(entity_rows)
    lengths = {key: len(values) for key, values in entity_rows.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(f"entity columns have different lengths: {lengths}")
    keys = list(entity_rows)
    columns = zip(*entity_rows.values(), strict=True)
    return [dict(zip(keys, values, strict=True)) for values in columns]
