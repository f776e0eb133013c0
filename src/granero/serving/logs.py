"""One JSON object per log line, for log shippers; standard logging only, no extra dependency.

A record's ``extra={"fields": {...}}`` lands as top-level keys of its line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from granero.serving.limits import shorten

MAX_MESSAGE_BYTES = 4096
MAX_EXCEPTION_BYTES = 16384
"""A line's message and traceback are shortened to these (``limits.shorten``): a request can
carry megabytes, and no log line should."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": shorten(record.getMessage(), MAX_MESSAGE_BYTES),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = shorten(self.formatException(record.exc_info), MAX_EXCEPTION_BYTES)
        return json.dumps(line, default=str)


def configure_json_logging(level: str = "INFO") -> None:
    """Send granero's logs to stderr as JSON lines at ``level`` (DEBUG logs every request)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("granero")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
