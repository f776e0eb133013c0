"""``serving:`` in feature_store.yaml (kept apart from the server so config never imports grpc)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=6566, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    max_batch_size: int = Field(default=1000, ge=1)
    max_workers: int = Field(default=4, ge=1)
    """Request threads per process. Few on purpose: a request is mostly Python under the
    process's one GIL, so extra threads only queue for it, and the hand-offs cost CPU (16 threads
    served ~17% fewer 1-entity requests/s than 4). Scale with ``workers`` instead."""
    workers: int = Field(default=1, ge=1)
    """Serving processes sharing the port (SO_REUSEPORT); more than one scales past one GIL."""
    drain_seconds: float = Field(default=20.0, ge=0)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest request or response message, both ways."""
    registry_refresh_seconds: float = Field(default=5.0, ge=0)
    """How often, at most, the server checks the registry for a newly applied version."""
