"""The registry version a server answers from, following new applies without a restart.

Requests read an immutable snapshot, so one request never mixes two versions. At most every
``refresh_seconds`` one request (never more: the others keep the current snapshot rather than
wait) checks the registry and swaps in a newer version. A registry that is briefly unreadable
keeps the server on the version it has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from granero.errors import RegistryError
from granero.registry import FileRegistry, RegistryVersion

log = logging.getLogger(__name__)


class RegistryFollower:
    def __init__(self, registry: FileRegistry, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Reads the current version now; RegistryError when nothing was applied yet."""
        self._registry = registry
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current = self._read()
        self._checked_at = clock()

    def current(self) -> RegistryVersion:
        """The latest version seen; checks for a newer one when the last check is old enough."""
        due = self._clock() - self._checked_at >= self._refresh_seconds
        if due and self._lock.acquire(blocking=False):
            try:
                self._check()
            finally:
                self._lock.release()
        return self._current

    def _check(self) -> None:
        self._checked_at = self._clock()
        try:
            latest = self._read()
        except RegistryError as error:
            log.warning("registry check failed; still serving version %s: %s",
                        self._current.version, error)
            return
        if latest.version != self._current.version:
            log.info("registry version %s -> %s", self._current.version, latest.version)
            self._current = latest

    def _read(self) -> RegistryVersion:
        version = self._registry.current()
        if version is None:
            raise RegistryError(f"nothing applied yet in {self._registry.path}: "
                                "run `granero apply` first")
        return version
