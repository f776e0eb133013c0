"""The gRPC server: FeatureServing, the standard health service, reflection and metrics.

Lifecycle: ``build_server`` listens, pings the online store once and reports SERVING if it
answered (NOT_SERVING if not); from then on ``StoreHealth`` keeps health in step with the store
(serving/health.py). ``ServerHandle.stop`` drains: health turns NOT_SERVING for good, new RPCs are
refused, and in-flight ones get up to ``grace`` seconds to finish.
Transport (serving/tls.py): TLS from ``config.tls`` (files re-read on rotation), plain text
only on loopback unless ``config.insecure``; ``health_port`` adds a plain-text listener with the
health service alone, for probes that cannot speak TLS.
``serve`` runs that lifecycle in the foreground until SIGTERM or SIGINT. Nothing on this import
path loads pyspark: a serving process starts in about a second and carries no JVM.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from granero.access.config import AccessConfig
from granero.access.guard import AccessGuard
from granero.access.interceptor import AccessInterceptor
from granero.errors import ConfigError
from granero.freshness.report import store_freshness
from granero.serving.config import ServingConfig
from granero.serving.health import LIVENESS_SERVICE, SERVING, StoreHealth
from granero.serving.servicer import SERVICE_NAME, FeatureServingServicer, add_to_server
from granero.serving.tls import CertificateFiles, require_safe_transport, server_credentials

if TYPE_CHECKING:
    from granero.feature_store import FeatureStore

log = logging.getLogger(__name__)


@dataclass
class ServerHandle:
    """A started server; ``close`` (or leaving a ``with`` block) stops it at once."""

    server: grpc.Server
    servicer: FeatureServingServicer
    health: health.HealthServicer
    host: str
    port: int
    metrics_http: Any = None
    store_health: StoreHealth | None = None
    access: AccessGuard | None = None
    """Authentication, the registry's permissions and the audit log (granero/access)."""
    certificates: CertificateFiles | None = None
    """With TLS: the files served, re-read on rotation (serving/tls.py)."""
    health_server: HealthPort | None = None

    @property
    def address(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_http.server_port if self.metrics_http else None

    def stop(self, grace: float | None = None) -> threading.Event:
        """Start draining; the event is set once in-flight requests finished or grace ran out."""
        self.health.enter_graceful_shutdown()
        return self.server.stop(grace)

    @property
    def health_port(self) -> int | None:
        return self.health_server.port if self.health_server else None

    def close(self) -> None:
        self.stop(0).wait()
        if self.health_server is not None:
            self.health_server.server.stop(0).wait()
        if self.store_health is not None:
            self.store_health.stop()
        if self.access is not None:
            self.access.close()
        if self.metrics_http is not None:
            self.metrics_http.shutdown()
            self.metrics_http.server_close()
            self.metrics_http = None

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_server(
    store: FeatureStore, config: ServingConfig, *, servicer: FeatureServingServicer | None = None,
    access: AccessConfig | None = None,
) -> ServerHandle:
    """Start serving ``store`` as ``config`` says (port 0 picks a free port: see ``handle.port``).

    ``servicer`` replaces the default one, e.g. by a subclass that holds requests in tests;
    ``access`` replaces the store's ``access:`` config (granero/access: one interceptor).
    """
    require_safe_transport(config)
    credentials, certificates = server_credentials(config.tls) if config.tls else (None, None)
    servicer = servicer or FeatureServingServicer(store, config)
    guard = AccessGuard(access or store.config.access, servicer.registry.current)
    interceptor = AccessInterceptor(guard, config.limits.max_error_bytes, servicer.metrics)
    pool = futures.ThreadPoolExecutor(config.max_workers, thread_name_prefix="granero-rpc")
    server = grpc.server(pool, options=_options(config), interceptors=[interceptor])
    add_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(services, server)
    port = _listen(server, config, config.port, credentials)
    handle = ServerHandle(server, servicer, health_servicer, config.host, port)
    handle.certificates = certificates
    if certificates is not None:  # read at each scrape: follows rotations
        servicer.metrics.tls_expiry.set_function(lambda: certificates.expires_at.timestamp())
    handle.access = guard
    servicer.metrics.watch_freshness(lambda now: store_freshness(store, now))  # read at each scrape
    if config.health_port is not None:
        handle.health_server = _health_only(health_servicer, config)
    handle.store_health = _watch_store(store, config, handle)
    health_servicer.set(LIVENESS_SERVICE, SERVING)
    servicer.transform_health.attach(health_servicer)  # per feature service: its transforms' code
    server.start()
    if config.metrics_port is not None:
        _expose_metrics(handle, config.metrics_port)
    return handle


SIGNAL_POLL_SECONDS = 0.5
"""How often the main thread wakes while it waits for SIGTERM or SIGINT. The kernel may deliver
the signal to any thread (grpc's among them); Python runs the handler only in the main thread,
and a wait without a timeout is woken only by a signal delivered to the main thread itself, so
such a wait could miss the stop for good (a worker killed after its drain time, seen in CI)."""


def serve(
    store: FeatureStore,
    config: ServingConfig,
    *,
    on_ready: Callable[[ServerHandle], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain for up to ``config.drain_seconds``.

    Runs in the main thread (signal handlers live there). Handlers are installed before the
    server starts, so a signal during start-up still leads to a clean stop.
    """
    stopping = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in signals}
    try:
        with build_server(store, config) as handle:
            gc.freeze()  # start-up objects leave the GC's view: no full passes in the p99 tail
            if on_ready is not None:
                on_ready(handle)
            while not stopping.wait(SIGNAL_POLL_SECONDS):
                pass
            log.info("draining for up to %ss", config.drain_seconds)
            handle.stop(config.drain_seconds).wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _watch_store(store: FeatureStore, config: ServingConfig, handle: ServerHandle) -> StoreHealth:
    """Health from a first ping now, then from a ping every ``health_check_seconds``."""
    gauge = handle.servicer.metrics.healthy
    return StoreHealth(
        store.online_store.ping, handle.health, ("", SERVICE_NAME),
        every_seconds=config.health_check_seconds, failures=config.health_failures,
        successes=config.health_successes, on_change=lambda healthy: gauge.set(int(healthy)),
    ).start()


def _options(config: ServingConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.limits.max_request_bytes),
        # one process: a port already in use must fail, not be shared silently; several
        # workers (serving/workers.py) share it on purpose
        ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
    ]


def _listen(server: grpc.Server, config: ServingConfig, port: int,
            credentials: grpc.ServerCredentials | None = None) -> int:
    address = f"{_bracketed(config.host)}:{port}"
    try:
        bound = (server.add_secure_port(address, credentials) if credentials
                 else server.add_insecure_port(address))
    except RuntimeError:
        bound = 0
    if bound == 0:  # exit 2 like any unusable setting, the address named
        raise ConfigError(f"cannot listen on {address}: the port is in use or the host is not an "
                          f"address of this machine (choose another with --port/--host or "
                          f"serving.port/serving.host)")
    return bound


def _health_only(health_servicer: health.HealthServicer, config: ServingConfig) -> HealthPort:
    """grpc.health.v1 alone, in plain text on ``health_port``: the same statuses as the main
    port (one servicer), for probes that cannot speak TLS; no feature is reachable there."""
    pool = futures.ThreadPoolExecutor(1, thread_name_prefix="granero-health")
    server = grpc.server(pool, options=_options(config))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = _listen(server, config, config.health_port or 0)
    server.start()
    return HealthPort(server, port)


@dataclass
class HealthPort:
    server: grpc.Server
    port: int


def _expose_metrics(handle: ServerHandle, port: int) -> None:
    try:
        handle.metrics_http, _ = handle.servicer.metrics.expose(handle.host, port)
    except OSError as error:
        handle.close()
        address = f"{_bracketed(handle.host)}:{port}"
        raise ConfigError(f"cannot serve metrics on {address}: {error}") from None


def _bracketed(host: str) -> str:
    """IPv6 literals need brackets in ``host:port`` addresses."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
