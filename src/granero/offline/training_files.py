"""Training sets from and to local files without Spark, for requests small enough to answer in
process (``granero historical`` picks this way when it can; ``retrieval.choose_engine`` decides).

The output has the layout Spark writes: a folder of ``part-*.parquet`` files, replaced as a whole
(a reader sees the old folder or the new one, never a half-written one; for a moment, none).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from granero.errors import RetrievalError

if TYPE_CHECKING:
    import pandas as pd

SMALL_ENTITY_FILE_BYTES = 64 * 2**20
"""Entity files up to this size (Parquet, on disk) are read into pandas; larger go to Spark."""


def local_path(location: str) -> Path | None:
    """``location`` as a local path, or None for a URL of another file system (``s3a://``...)."""
    scheme = urlparse(location).scheme
    if scheme in ("", "file"):
        return Path(location.removeprefix("file://"))
    return None


def small_parquet_entities(location: str, max_bytes: int | None = None) -> pd.DataFrame | None:
    """The entity rows of a local Parquet file or folder of at most ``max_bytes`` (default:
    SMALL_ENTITY_FILE_BYTES), else None."""
    path = local_path(location)
    if path is None or not path.exists() or not _is_parquet(path):
        return None
    files = [path] if path.is_file() else list(path.rglob("*.parquet"))
    limit = SMALL_ENTITY_FILE_BYTES if max_bytes is None else max_bytes
    if not files or sum(f.stat().st_size for f in files) > limit:
        return None
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def _is_parquet(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".parquet"
    return not (path / "_delta_log").exists() and any(path.rglob("*.parquet"))


def write_parquet_training_set(frame: pd.DataFrame, location: str, overwrite: bool) -> None:
    """Write ``frame`` as ``location/part-00000.parquet``; an existing ``location`` is replaced
    only with ``overwrite`` (else RetrievalError, as Spark's writer refuses)."""
    target = local_path(location)
    if target is None:
        raise RetrievalError(f"{location}: the in-process engine writes local paths only")
    if target.exists() and not overwrite:
        raise RetrievalError(f"{location} already exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.staging.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers
    staging.mkdir()  # the umask's mode, like Spark's output
    try:
        frame.to_parquet(staging / "part-00000.parquet", index=False)
        (staging / "_SUCCESS").touch()
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``: the old folder is moved aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
