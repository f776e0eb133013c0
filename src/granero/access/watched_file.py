"""A file read again when it changes (a Secret rotated in place, a token revoked), without a restart.

At most every ``check_seconds`` one ``stat``; the file is parsed again when its inode, size or
modification time changed (a Kubernetes Secret update swaps a symlink: a new inode). A file that
fails to parse after a change keeps the last good content and logs a warning; one that fails at
start is a ConfigError.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from granero.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")


class WatchedFile(Generic[T]):
    def __init__(self, path: str | Path, parse: Callable[[bytes], T], check_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._parse = parse
        self._check_seconds = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._value = self._read()
        self._checked_at = clock()

    def current(self) -> T:
        """The content as last parsed, re-read first if the file changed and a check is due."""
        due = self._clock() - self._checked_at >= self._check_seconds
        if due and self._lock.acquire(blocking=False):
            try:
                self._check()
            finally:
                self._lock.release()
        return self._value

    def _check(self) -> None:
        self._checked_at = self._clock()
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                self._value, self._stamp = self._read(), stamp
        except ConfigError as error:
            log.warning("keeping the last good %s: %s", self.path.name, error)

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as error:
            raise ConfigError(f"{self.path}: cannot read: {error.strerror}") from None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _read(self) -> T:
        try:
            data = self.path.read_bytes()
        except OSError as error:
            raise ConfigError(f"{self.path}: cannot read: {error.strerror}") from None
        try:
            return self._parse(data)
        except ConfigError:
            raise
        except ValueError as error:
            raise ConfigError(f"{self.path}: {error}") from None
