"""Health that follows the online store: a lookup fails while Redis does, so health says so.

One thread per server pings the store every ``health_check_seconds`` and sets the standard gRPC
health service's status (of ``""`` and FeatureServing), so a ``Check`` (the readiness probe)
costs a dictionary read, never a Redis round trip. Hysteresis keeps one lost ping from flapping
a pod out of rotation: ``failures`` pings failing in a row turn it NOT_SERVING, ``successes``
good ones in a row turn it SERVING again. ``LIVENESS_SERVICE`` stays SERVING through all of it.
Draining wins over everything: once the server stops, the health service stays NOT_SERVING
whatever the pings say (grpc's ``enter_graceful_shutdown`` ignores later updates).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from grpc_health.v1 import health, health_pb2

from granero.errors import GraneroError
from granero.serving.limits import shorten

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LIVENESS_SERVICE = "granero.liveness"
"""A health service name that is SERVING while the process answers (until it drains), whatever
the store: for liveness and startup probes, so a Redis outage takes pods out of rotation
(readiness asks ``""``) without restarting them all."""


class Hysteresis:
    """Healthy until ``failures`` failed checks in a row; then unhealthy until ``successes``
    good ones in a row. Pure state: the thread below feeds it."""

    def __init__(self, failures: int, successes: int, healthy: bool = True) -> None:
        self.failures, self.successes = failures, successes
        self.healthy = healthy
        self._streak = 0
        """Checks in a row that disagree with ``healthy``."""

    def observe(self, ok: bool) -> bool:
        """Record one check; True when the state changed."""
        if ok == self.healthy:
            self._streak = 0
            return False
        self._streak += 1
        if self._streak < (self.successes if ok else self.failures):
            return False
        self.healthy, self._streak = ok, 0
        return True


class StoreHealth:
    """Pings the online store in a thread of its own and keeps ``service`` statuses current."""

    def __init__(
        self, ping: Callable[[], None], servicer: health.HealthServicer, services: Iterable[str],
        *, every_seconds: float, failures: int, successes: int,
        on_change: Callable[[bool], None] = lambda healthy: None,
    ) -> None:
        self.ping, self.servicer, self.services = ping, servicer, tuple(services)
        self.every_seconds, self.on_change = every_seconds, on_change
        self.checks = 0
        """Pings done and acted upon by the thread (tests wait on it rather than on the clock)."""
        self.state = Hysteresis(failures, successes, healthy=self._ping_ok())
        self._stopped = threading.Event()
        self._publish()
        self._thread = threading.Thread(target=self._run, name="granero-health", daemon=True)

    def start(self) -> StoreHealth:
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread (waits at most for one ping in flight)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self.every_seconds):
            ok = self._ping_ok()
            if not self._stopped.is_set() and self.state.observe(ok):
                log.warning("online store %s: health turns %s", "reachable" if ok else
                            "unreachable", "SERVING" if ok else "NOT_SERVING")
                self._publish()
            self.checks += 1

    def _ping_ok(self) -> bool:
        try:
            self.ping()
        except GraneroError as error:
            log.debug("health ping failed: %s", shorten(str(error), 1000))
            return False
        except Exception:  # a bug in the check must not kill the thread: count it as down
            log.exception("health ping failed unexpectedly")
            return False
        return True

    def _publish(self) -> None:
        """``on_change`` (the healthy gauge) first, then the statuses: whoever sees a status sees
        the gauge that goes with it (the other order let a probe read NOT_SERVING beside a gauge
        still at 1, which a CI run caught)."""
        status = SERVING if self.state.healthy else NOT_SERVING
        self.on_change(self.state.healthy)
        for service in self.services:
            self.servicer.set(service, status)
