"""The thread that appends the online queries' landed rows to the offline tables while
``granero stream`` runs (``offline.landed_append``), every ``offline_trigger_interval``.

A failed append stops the job like a failed query does (``on_failure``); the landed rows stay
where they are, and the next run's first append redoes the range it had recorded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from granero.offline.landed_append import LandedAppender

_UNIT_SECONDS = {"millisecond": 0.001, "second": 1.0, "minute": 60.0}


def interval_seconds(interval: str) -> float:
    """``'200 milliseconds'``, ``'1 second'``, ``'2 minutes'`` (``StreamingConfig``'s form) in seconds."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]+?)s?", interval.strip()).groups()
    return float(number) * _UNIT_SECONDS[unit]


@dataclass
class AppendLoop:
    """Runs every appender each ``interval`` seconds on a thread of its own until ``stop``."""

    appenders: list[LandedAppender]
    interval: float
    on_failure: Callable[[], None]
    """Called once when an append fails (the job then stops its queries)."""
    failure: Exception | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.appenders:
            self._thread = threading.Thread(target=self._run, name="granero-landed-append", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (an append in flight finishes first)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def append_all(self) -> None:
        for appender in self.appenders:
            appender.append()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.interval):
                self.append_all()
        except Exception as error:  # noqa: BLE001 -- reported by the job, which stops and raises it
            self.failure = error
            self.on_failure()
