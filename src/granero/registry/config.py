"""``registry:`` in feature_store.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RegistryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "data/registry"
    """A local directory (shared storage when several machines apply)."""
