"""A Delta source's changes since a version, as event-time ``Change``s (the I/O around
``delta_log``): where the table is, its log on any file system, and the timestamps of added
files whose statistics do not give them.

Anything the log cannot account for (a missing commit, versions that went back, a file removed
without statistics, an added file whose timestamps cannot be read) becomes a ``Change`` of every
event time, logged as a warning: re-materializing too much costs time, skipping loses rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

from granero.config import resolve_path
from granero.definitions import FileSource, Source
from granero.errors import MaterializationError
from granero.incremental.delta_log import FileChange, LocalLog, LogChanges, LogFolder
from granero.incremental.plan import EPOCH, Change, utc_days
from granero.offline.delta import local_path
from granero.offline.spark_errors import spark_errors

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def delta_location(source: Source, repo_path: Path, spark: Callable[[], SparkSession]) -> str | None:
    """Where the source's Delta table is; None when the source is not a Delta table."""
    if isinstance(source, FileSource):
        return resolve_path(repo_path, source.path) if source.format == "delta" else None
    from delta.tables import DeltaTable

    try:
        with spark_errors(MaterializationError, source.table):
            return DeltaTable.forName(spark(), source.table).detail().first()["location"]
    except MaterializationError:
        return None  # not a Delta table (or none at all: materialization says so)


def timestamp_column(source: Source) -> str:
    """The source's timestamp column as the table stores it (before ``field_mapping``)."""
    if source.timestamp_field in source.field_mapping:
        return source.timestamp_field
    stored = {new: old for old, new in source.field_mapping.items()}
    return stored.get(source.timestamp_field, source.timestamp_field)


def log_folder(location: str, spark: Callable[[], SparkSession]) -> LogFolder:
    local = local_path(location)
    return LocalLog(local) if local is not None else HadoopLog(spark(), location)


class HadoopLog:
    """A ``_delta_log`` folder on any file system Spark reaches (s3a://, abfss://...)."""

    def __init__(self, spark: SparkSession, location: str) -> None:
        context = spark.sparkContext
        self.jvm = context._jvm
        self.folder = self.jvm.org.apache.hadoop.fs.Path(f"{location.rstrip('/')}/_delta_log")
        self.fs = self.folder.getFileSystem(context._jsc.hadoopConfiguration())

    def names(self) -> list[str]:
        if not self.fs.exists(self.folder):
            return []
        return [status.getPath().getName() for status in self.fs.listStatus(self.folder)]

    def read(self, name: str) -> str:
        stream = self.fs.open(self.jvm.org.apache.hadoop.fs.Path(self.folder, name))
        try:
            return self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()


def delta_changes(
    location: str, found: LogChanges, since: int | None, column: str, spark: Callable[[], SparkSession]
) -> list[Change]:
    """The event-time windows the commits in ``found`` touched, day by day."""
    versions = f"Delta source versions {0 if since is None else since + 1}-{found.latest}"
    if found.unknown:
        return [everything(f"Delta source {location}: {found.unknown}")]
    changes = [Change(utc_days(f.first, f.last), versions) for f in found.files if f.first and f.last]
    unread = [f for f in found.files if f.first is None or f.last is None]
    removed = [f.path for f in unread if f.action == "remove"]
    if removed:
        changes.append(everything(f"{versions} removed {removed[0]} without statistics of {column!r}"))
    added = [f for f in unread if f.action == "add"]
    if added:
        changes.append(_read_added(location, added, column, spark, versions))
    return changes


def everything(reason: str) -> Change:
    """Every event time changed; said in the log, since it may cost a long run."""
    log.warning("%s: every materialized window is re-materialized", reason)
    return Change(None, reason)


def _read_added(
    location: str, added: list[FileChange], column: str, spark: Callable[[], SparkSession], versions: str
) -> Change:
    """The days the added files' timestamps span, read from the files (no statistics)."""
    span = added_file_times(spark(), location, [f.path for f in added], column)
    if span is None:
        return everything(f"{versions} added files whose {column!r} could not be read as times")
    return Change(utc_days(*span), f"{versions} (timestamps read from files without statistics)")


def added_file_times(
    spark: SparkSession, location: str, paths: list[str], column: str
) -> tuple[datetime, datetime] | None:
    """The least and greatest ``column`` value over the files (None when the column is not a
    time, or the files are gone or unreadable)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    files = [p if "://" in p or p.startswith("/") else f"{location.rstrip('/')}/{unquote(p)}" for p in paths]
    try:
        with spark_errors(MaterializationError, f"reading {column!r} of files added to {location}"):
            frame = spark.read.parquet(*files)
            if not isinstance(frame.schema[column].dataType, DateType | TimestampType | TimestampNTZType):
                return None
            micros = F.unix_micros(F.col(f"`{column}`").cast("timestamp"))  # the session is UTC
            first, last = frame.agg(F.min(micros), F.max(micros)).first()
    except (MaterializationError, KeyError):
        return None
    return (_instant(first), _instant(last)) if first is not None else None


def _instant(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)
