"""Atomic file writes: readers see a file's old content or its new content, never a mix; and
the lock file that serialises writers of a folder across processes.

Used for the registry (version files, HEAD, materialized intervals) and the Parquet tables'
metadata (``_schema.json``, the swap journal). Files get the mode a plain ``open()`` gives
(0666 less the process umask), so a registry on a shared folder is readable by the group
exactly as the user's umask intends (``tempfile.mkstemp`` would force 0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new content, durably
    (the file and its folder entry are fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def create_if_absent(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` as ``atomic_write`` does, only if ``path`` does not exist:
    of writers racing to create it, one wins and the others change nothing (a hard link never
    replaces a file). Whether this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}.new")
    atomic_write(staged, data)
    try:
        os.link(staged, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(staged)
        _fsync_dir(path.parent)
    return True


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if absent): one holder at a time across
    processes on a local file system; released if the holder dies."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
