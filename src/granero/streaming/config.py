"""``streaming:`` in feature_store.yaml: where stream queries keep their state, and how often they run."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

_INTERVAL = re.compile(r"^\d+(\.\d+)?\s*(milliseconds?|seconds?|minutes?)$")


class StreamingConfig(BaseModel):
    """Checkpoints and dead letters live in folders (relative paths are taken from the repo).

    A plain view served online runs one query, whose micro-batch trigger is ``trigger_interval``
    (online, landing, dead letters); its landed rows are appended to the offline table every
    ``offline_trigger_interval`` (``streaming.job``). A view without that query (aggregate, or
    offline only) runs a durable query: on ``trigger_interval`` when it serves online, else on
    ``offline_trigger_interval``. A query starts a batch this long after its previous one
    started (at once when a batch took longer). The short trigger keeps produce -> served low;
    the long one makes fewer, larger offline commits.
    """

    model_config = ConfigDict(extra="forbid")

    checkpoint_location: str = "data/streaming/checkpoints"
    dead_letter_location: str = "data/streaming/dead_letters"
    trigger_interval: str = "200 milliseconds"
    offline_trigger_interval: str = "30 seconds"
    max_offsets_per_trigger: int | None = None
    """Most Kafka messages one micro-batch reads (None: all that arrived)."""

    @field_validator("trigger_interval", "offline_trigger_interval")
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


class QueryKind(StrEnum):
    """Which of the views' queries a process runs (``granero stream --queries``)."""

    ALL = "all"
    ONLINE = "online"
    """Only the online queries of plain views served online (online, landing, dead letters): a
    process of their own, so aggregate or offline-only views' durable queries never share its CPU
    and JVM. Pair it with a ``durable`` process, or those views' rows never reach the offline table."""
    DURABLE = "durable"
    """The durable queries (aggregate views' online values too: they come from these) and the
    appends of the online queries' landed rows to the offline tables."""
