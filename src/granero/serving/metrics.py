"""Prometheus metrics of one server, in a registry of its own.

A private registry (rather than prometheus-client's global one) lets several servers live in one
process, as they do in tests, and exposes exactly the serving metrics on the metrics port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from granero.freshness.report import ViewFreshness

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServingMetrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "granero_serving_request_seconds", "Time to answer a request, by RPC method.",
            ["method"], registry=self.registry, buckets=_LATENCY_BUCKETS,
        )
        self.requests = Counter(
            "granero_serving_requests", "Requests answered, by RPC method and gRPC status code.",
            ["method", "code"], registry=self.registry,
        )
        self.feature_values = Counter(
            "granero_serving_feature_values", "Feature values served, by status.",
            ["status"], registry=self.registry,
        )
        self.registry_version = Gauge(
            "granero_serving_registry_version", "Registry version requests are answered from.",
            registry=self.registry,
        )
        self.healthy = Gauge(
            "granero_serving_healthy",
            "1 while the health service says SERVING (the online store answers pings), else 0.",
            registry=self.registry,
        )
        self.tls_expiry = Gauge(
            "granero_serving_tls_certificate_expiry_timestamp_seconds",
            "When the certificate served to new connections expires (Unix time); 0 without TLS.",
            registry=self.registry,
        )
        self.unexpected_errors = Counter(
            "granero_serving_unexpected_errors",
            "Requests that failed with an error no GraneroError stands for: a bug, by method.",
            ["method"], registry=self.registry,
        )

    def observe_request(self, method: str, code: str, seconds: float) -> None:
        self._child(self.latency, method).observe(seconds)
        self._child(self.requests, method, code).inc()

    def count_values(self, by_status: Mapping[str, int]) -> None:
        for status, count in by_status.items():
            self._child(self.feature_values, status).inc(count)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: ``labels`` takes a lock and builds a key
        on every call, a cost paid per request."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def watch_freshness(self, report: Callable[[datetime], list[ViewFreshness]]) -> None:
        """Export each view's freshness (granero.freshness.collector), read from ``report`` at
        each scrape: off the request path."""
        from granero.freshness.collector import FreshnessCollector

        self.registry.register(FreshnessCollector(report))

    def expose(self, host: str, port: int) -> tuple[Any, Any]:
        """Serve ``/metrics`` over HTTP; returns (server, thread), the server knows its port."""
        return start_http_server(port, addr=host, registry=self.registry)
