"""``serving:`` in feature_store.yaml (kept apart from the server so config never imports grpc)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from granero.serving.limits import ServingLimits


class TlsConfig(BaseModel):
    """The server's certificate and key (PEM files, e.g. a mounted Kubernetes Secret), re-read
    on rotation without a restart (serving/tls.py). With ``client_ca_file``, mutual TLS: every
    client must present a certificate that CA signed."""

    model_config = ConfigDict(extra="forbid")

    cert_file: str
    """The certificate chain, leaf first."""
    key_file: str
    client_ca_file: str | None = None


class ServingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=6566, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    limits: ServingLimits = ServingLimits()
    """What one request may ask for (names, refs, batch, bytes), checked before any work."""
    max_workers: int = Field(default=4, ge=1)
    """Request threads per process. Few on purpose: a request is mostly Python under the
    process's one GIL, so extra threads only queue for it, and the hand-offs cost CPU (16 threads
    served ~17% fewer 1-entity requests/s than 4). Scale with ``workers`` instead."""
    workers: int = Field(default=1, ge=1)
    """Serving processes sharing the port (SO_REUSEPORT); more than one scales past one GIL."""
    drain_seconds: float = Field(default=20.0, ge=0)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest response message (requests: ``limits.max_request_bytes``)."""
    registry_refresh_seconds: float = Field(default=5.0, ge=0)
    """How often, at most, the server checks the registry for a newly applied version."""
    health_check_seconds: float = Field(default=2.0, gt=0)
    """How often the online store is pinged for the health service (cached between pings)."""
    health_failures: int = Field(default=2, ge=1)
    """Consecutive failed pings that turn health NOT_SERVING."""
    health_successes: int = Field(default=2, ge=1)
    """Consecutive good pings that turn it SERVING again."""
    tls: TlsConfig | None = None
    """Without it the server speaks plain text, which only a loopback ``host`` gets by default."""
    insecure: bool = False
    """Serve plain text on a non-loopback ``host`` anyway (logged as a warning)."""
    health_port: int | None = Field(default=None, ge=0, le=65535)
    """A plain-text port serving only grpc.health.v1, for probes that cannot speak TLS (the
    kubelet's); it tells whether the server is SERVING, nothing else."""

    @model_validator(mode="before")
    @classmethod
    def _batch_size_of_old(cls, data: Any) -> Any:
        """``serving.max_batch_size`` (before ``limits`` existed) still works: it moves in."""
        if not isinstance(data, dict) or "max_batch_size" not in data:
            return data
        data = dict(data)
        size = data.pop("max_batch_size")
        limits = data.get("limits")
        limits = dict(limits) if isinstance(limits, dict) else (
            limits.model_dump() if isinstance(limits, ServingLimits) else {})
        if limits.get("max_batch_size", size) != size:
            raise ValueError("max_batch_size is given twice (serving.max_batch_size and "
                             "serving.limits.max_batch_size) with different values")
        data["limits"] = {**limits, "max_batch_size": size}
        return data

    @property
    def max_batch_size(self) -> int:
        return self.limits.max_batch_size
