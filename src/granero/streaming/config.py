"""``streaming:`` in feature_store.yaml: where stream queries keep their state, and how often they run."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

_INTERVAL = re.compile(r"^\d+(\.\d+)?\s*(milliseconds?|seconds?|minutes?)$")


class StreamingConfig(BaseModel):
    """Checkpoints and dead letters live in folders (relative paths are taken from the repo).

    ``trigger_interval`` is the micro-batch trigger: each view's query starts a batch this long
    after the previous one started (at once when a batch took longer). 200 ms keeps produce ->
    served near half a second at low rates while a busy topic still gets batches of thousands.
    """

    model_config = ConfigDict(extra="forbid")

    checkpoint_location: str = "data/streaming/checkpoints"
    dead_letter_location: str = "data/streaming/dead_letters"
    trigger_interval: str = "200 milliseconds"
    max_offsets_per_trigger: int | None = None
    """Most Kafka messages one micro-batch reads (None: all that arrived)."""

    @field_validator("trigger_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if not _INTERVAL.match(value.strip()):
            raise ValueError(f"{value!r} is not an interval such as '200 milliseconds' or '1 second'")
        return value.strip()

    @field_validator("max_offsets_per_trigger")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value
