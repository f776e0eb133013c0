"""Atomic file writes: readers see a file's old content or its new content, never a mix.

Used for the registry (version files, HEAD, materialized intervals) and the Parquet tables'
metadata (``_schema.json``, the swap journal). Files get the mode a plain ``open()`` gives
(0666 less the process umask), so a registry on a shared folder is readable by the group
exactly as the user's umask intends (``tempfile.mkstemp`` would force 0600).
"""

from __future__ import annotations

import contextlib
import os
import uuid
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
