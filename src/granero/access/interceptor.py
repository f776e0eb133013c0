"""The gRPC server interceptor: every call but the health service's is authenticated, authorized
and audited here, and nowhere else.

Per FeatureServing method:

- GetOnlineFeatures: ``read_online`` on the service or views asked for (``Policy.readable``);
  PII fields not granted are withheld by narrowing the request to the features the caller may
  read. An unknown name and a forbidden one get the same PERMISSION_DENIED.
- ListFeatureServices: answered, then stripped of the services the caller may not see.
- DescribeFeatureView: a view the caller may not see is NOT_FOUND, worded as for an unknown one.
- PushFeatures: ``push`` on the named view (unknown and forbidden alike PERMISSION_DENIED).
- GetServerInfo and the reflection service: any authenticated caller.

No credentials that verify: UNAUTHENTICATED. Requests whose bytes do not parse pass to the
servicer once the caller is authenticated (it answers INVALID_ARGUMENT and reveals nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health

from granero.access.audit import AuditRecord
from granero.access.guard import AccessGuard
from granero.access.permissions import Policy
from granero.access.principal import Credentials, Principal
from granero.errors import GraneroError, NotFound, Unauthenticated
from granero.serving.limits import shorten
from granero.serving.servicer import SERVICE_NAME, MalformedMessage, _longest_list
from granero.serving.tls import peer_certificate
from granero.serving.v1 import serving_pb2 as pb

ACTIONS = {"GetOnlineFeatures": "read_online", "ListFeatureServices": "list",
           "DescribeFeatureView": "describe", "GetServerInfo": "info", "PushFeatures": "push"}
OPEN_SERVICES = (f"/{health.SERVICE_NAME}/",)
"""Probes (the kubelet's) carry no credentials; health tells whether the server serves, no more."""


def credentials_of(context: grpc.ServicerContext) -> Credentials:
    """The bearer credential of the call's metadata and the names of its verified certificate."""
    bearer = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, credential = str(value).partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise Unauthenticated("the authorization metadata must read 'Bearer <credential>'")
            bearer = credential.strip()
    certificate = peer_certificate(context)
    names = () if certificate is None else tuple(
        n for n in (certificate.common_name, *certificate.sans) if n)
    return Credentials(bearer, names)


class AccessInterceptor(grpc.ServerInterceptor):
    def __init__(self, guard: AccessGuard, max_error_bytes: int, metrics: Any = None) -> None:
        """``metrics`` (the servicer's ServingMetrics) counts refused calls by method and code,
        as the servicer counts the calls it answers: no principal, name or value in a label."""
        self.guard = guard
        self.max_error_bytes = max_error_bytes
        self.metrics = metrics

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        service, _, method = details.method.lstrip("/").partition("/")
        if service == SERVICE_NAME and handler.unary_unary is not None:
            return _replace(handler, unary_unary=self._guarded(method, handler.unary_unary))
        if handler.stream_stream is not None:  # reflection
            return _replace(handler, stream_stream=self._authenticated(handler.stream_stream))
        return handler

    def _authenticated(self, inner: Callable) -> Callable:
        def behaviour(requests: Any, context: grpc.ServicerContext) -> Any:
            try:
                self.guard.principal(credentials_of(context))
            except Unauthenticated as error:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            return inner(requests, context)

        return behaviour

    def _guarded(self, method: str, inner: Callable) -> Callable:
        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            record = _record(method, request)
            try:
                principal = self.guard.principal(credentials_of(context))
                record.principal, record.via = principal.name, principal.via
                request = self._admit(method, request, principal)
            except GraneroError as error:
                self._refuse(record, error, started, context)
            try:
                response = inner(request, context)
            except Exception:
                record.code = _code_name(context)
                raise
            finally:
                self._write(record, started)
            return self._filtered(method, response, principal)

        return behaviour

    def _admit(self, method: str, request: Any, principal: Principal) -> Any:
        """The request to serve (narrowed when PII is withheld), or the GraneroError refusing it."""
        if type(request) is MalformedMessage:
            return request
        policy = self.guard.policy()
        if method == "GetOnlineFeatures":
            return _narrowed(request, policy, principal)
        if method == "PushFeatures" and policy.enforces("push"):
            name = request.feature_view
            policy.require(principal, "push", [policy.view(name)], f"feature view {name!r}")
        if method == "DescribeFeatureView" and policy.enforces("read_online"):
            resource = policy.view(request.name)
            if resource is None or not policy.may_see(principal, resource):
                raise NotFound(f"no feature view named {request.name!r}")
        return request

    def _filtered(self, method: str, response: Any, principal: Principal) -> Any:
        """ListFeatureServices without the services the caller may not see."""
        policy = self.guard.policy()
        if method != "ListFeatureServices" or not policy.enforces("read_online") or response is None:
            return response
        visible = [s for s in response.services
                   if (r := policy.service(s.name)) is not None and policy.may_see(principal, r)]
        del response.services[:]
        response.services.extend(visible)
        return response

    def _refuse(self, record: AuditRecord, error: GraneroError, started: float,
                context: grpc.ServicerContext) -> None:
        record.outcome = "unauthenticated" if isinstance(error, Unauthenticated) else "denied"
        record.code = error.grpc_code
        if self.metrics is not None:
            self.metrics.observe_request(record.method, error.grpc_code, time.perf_counter() - started)
        self._write(record, started)
        context.abort(grpc.StatusCode[error.grpc_code], shorten(str(error), self.max_error_bytes))

    def _write(self, record: AuditRecord, started: float) -> None:
        if self.guard.audit is not None:
            record.latency_ms = round((time.perf_counter() - started) * 1000, 3)
            self.guard.audit.write(record)


def _narrowed(request: pb.GetOnlineFeaturesRequest, policy: Policy,
              principal: Principal) -> pb.GetOnlineFeaturesRequest:
    which = request.WhichOneof("selection")
    if which is None:
        return request
    asked = request.feature_service if which == "feature_service" else tuple(request.features.refs)
    allowed = policy.readable(principal, "read_online", asked)
    if allowed == asked:
        return request
    narrowed = pb.GetOnlineFeaturesRequest()
    narrowed.CopyFrom(request)
    narrowed.features.refs[:] = list(allowed)
    return narrowed


def _record(method: str, request: Any) -> AuditRecord:
    record = AuditRecord(method, "", "", ACTIONS.get(method, "call"), "allowed")
    if method == "GetOnlineFeatures" and type(request) is not MalformedMessage:
        which = request.WhichOneof("selection")
        if which == "feature_service":
            record.feature_service = request.feature_service
        elif which == "features":
            record.views = sorted({ref.partition(":")[0] for ref in request.features.refs})
        record.entities = len(request.entities) or _longest_list(request.entity_columns.values())
    if method == "PushFeatures" and type(request) is not MalformedMessage:
        record.views = [request.feature_view]
    return record


def _code_name(context: grpc.ServicerContext) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _replace(handler: grpc.RpcMethodHandler, **behaviour: Callable) -> grpc.RpcMethodHandler:
    return handler._replace(**behaviour)
