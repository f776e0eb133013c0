"""What each view's streaming query last reported: one hash per project in Redis.

``__stream_progress__:<project>`` (outside the project's rows, like freshness) maps a view to
the JSON of its last micro-batch (batch id, rows written, dead letters, when it finished). The
stream job reports after each micro-batch's writes succeeded; ``granero status`` and the serving
metrics read it. A later report replaces the earlier one: one query per view writes it, in
batch order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from granero.errors import InvalidRequest
from granero.freshness.online_writes import translated_errors

if TYPE_CHECKING:
    from granero.online.redis import RedisStore


@dataclass(frozen=True)
class StreamProgress:
    """A view's last micro-batch: ``rows`` written, ``dead_letters`` set aside, finished ``at``."""

    batch_id: int | str
    rows: int
    dead_letters: int
    at: datetime

    def to_json(self) -> dict[str, object]:
        return {"batch_id": self.batch_id, "rows": self.rows,
                "dead_letters": self.dead_letters, "at": self.at.isoformat()}


def progress_key(project: str) -> str:
    return f"__stream_progress__:{project}"


def record_stream_progress(
    store: RedisStore, view: str, *, batch_id: int | str, rows: int, dead_letters: int,
    at: datetime,
) -> None:
    """Record the view's last micro-batch (one HSET); naive ``at`` is taken as UTC."""
    if isinstance(batch_id, bool) or not isinstance(batch_id, int | str):
        raise InvalidRequest(f"stream progress of view {view!r}: batch_id must be an int or str, got {batch_id!r}")
    progress = StreamProgress(batch_id, _count(view, "rows", rows),
                              _count(view, "dead_letters", dead_letters), _utc(view, at))
    with translated_errors(store, f"recording the stream progress of view {view!r}"):
        store.client.hset(progress_key(store.project), view, json.dumps(progress.to_json()))


def read_stream_progress(store: RedisStore) -> dict[str, StreamProgress]:
    """Per view, its stream's last reported micro-batch; views never streamed are absent."""
    with translated_errors(store, "reading stream progress"):
        raw = store.client.hgetall(progress_key(store.project))
    return {view.decode(): _parse(value) for view, value in raw.items()}


def _parse(value: bytes) -> StreamProgress:
    data = json.loads(value)
    return StreamProgress(data["batch_id"], data["rows"], data["dead_letters"],
                          datetime.fromisoformat(data["at"]))


def _count(view: str, field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"stream progress of view {view!r}: {field} must be a count >= 0, got {value!r}")
    return value


def _utc(view: str, at: object) -> datetime:
    if not isinstance(at, datetime):
        raise InvalidRequest(f"stream progress of view {view!r}: at must be a datetime, got {at!r}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
