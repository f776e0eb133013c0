"""The audit log: one JSON line per authorized or refused call, never a feature value.

Each line holds the time, the principal and how it authenticated, the method and action, the
feature service or views asked for, the entity count, the outcome and status code, and the
latency. The file is written through ``WatchedFileHandler``, which reopens it when logrotate (or
anyone) renames or deletes it, so rotation loses no line and needs no signal. Without a path
nothing is written.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AuditRecord:
    method: str
    principal: str
    via: str
    action: str
    outcome: str
    """``allowed``, ``denied`` (PERMISSION_DENIED) or ``unauthenticated``."""
    code: str = "OK"
    """The call's final status code: an allowed call can still fail (bad keys, Redis down)."""
    feature_service: str | None = None
    views: list[str] = field(default_factory=list)
    entities: int = 0
    latency_ms: float = 0.0


class AuditLog:
    """Appends ``AuditRecord`` lines to ``path``; thread-safe (logging's handler lock)."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, record: AuditRecord) -> None:
        line = {"ts": round(time.time(), 6), **vars(record)}  # shallow: asdict deep-copies
        self._handler.handle(logging.makeLogRecord({"msg": json.dumps(line, separators=(",", ":")),
                                                    "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()
