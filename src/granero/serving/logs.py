"""One JSON object per log line, for log shippers; standard logging only, no extra dependency.

A record's ``extra={"fields": {...}}`` lands as top-level keys of its line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_json_logging(level: str = "INFO") -> None:
    """Send granero's logs to stderr as JSON lines at ``level`` (DEBUG logs every request)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("granero")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
