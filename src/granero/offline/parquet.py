"""Parquet offline tables: plain files, windows swapped in day by day through a staging copy.

Layout of a view's table (a local or mounted POSIX file system; use Delta on object stores)::

    <path>/<view>/event_date=YYYY-MM-DD/...   the data, one directory per UTC day
    <path>/<view>/_schema.json                the table schema (so an empty table still reads)
    <path>/<view>/_staging/<id>/              a window being written
    <path>/<view>/_swap.json                  the journal of a swap in progress
    <path>/<view>/_trash/<id>/                replaced days, deleted once the swap finishes

A window write happens in two phases. (1) Spark writes the *new full content* of every day the
window touches — the kept rows of those days outside [start, end) plus the new rows — to a
staging directory. Any failure here leaves the table untouched. (2) A journal listing the days is
written atomically, then each day directory is swapped with two renames (old day to trash, staged
day into place) and the journal removed. The next write rolls an interrupted swap forward from the
journal, then removes what a write killed before its journal left in ``_staging`` (and
``_trash``). Guarantee: each day is always either wholly old or wholly new; a reader that lists the
table *during* phase 2 (milliseconds) can see some days old and some new, or miss the day being
renamed. Writers of one view are serialised by a lock file. Versions are not kept.

``read_arrow`` reads the files of the asked days in process with pyarrow (no Spark), typed by
``_schema.json``, so a column added later reads null from older files; ``count_rows`` sums the
row counts of their Parquet footers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from granero.atomic_files import exclusive_lock
from granero.errors import ConfigError, MaterializationError, RetrievalError
from granero.registry.store import atomic_write

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from granero.offline.tables import WindowWrite
    from granero.registry import Interval

_DAY_PREFIX = "event_date="
_SCHEMA_FILE = "_schema.json"
_JOURNAL = "_swap.json"
_STAGING = "_staging"
_TRASH = "_trash"
_APPENDED = "_appended"


class ParquetConfig(BaseModel):
    """``offline_store: {type: parquet, path: ...}``; one directory per view under ``path``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["parquet"] = "parquet"
    path: str = "data/offline"


def window_days(interval: Interval) -> tuple[date, date]:
    """First and last UTC day the half-open window touches."""
    last = (interval.end - timedelta(microseconds=1)).astimezone(UTC).date()
    return interval.start.astimezone(UTC).date(), last


def day_dirs(directory: Path) -> dict[date, Path]:
    """The ``event_date=`` directories under ``directory``, by day."""
    if not directory.is_dir():
        return {}
    return {
        date.fromisoformat(p.name[len(_DAY_PREFIX) :]): p
        for p in directory.iterdir()
        if p.is_dir() and p.name.startswith(_DAY_PREFIX)
    }


def data_files(day: Path) -> list[str]:
    """The Parquet files of a day directory (Spark's hidden ``.crc`` and ``_`` files left out)."""
    files: list[str] = []
    for folder, subfolders, names in os.walk(day):
        subfolders[:] = [name for name in subfolders if not _hidden(name)]
        files += [os.path.join(folder, name) for name in names if not _hidden(name)]
    return sorted(files)


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


class ParquetStore:
    """Parquet tables at ``<path>/<view name>``."""

    kind = "parquet"
    local = True
    """Parquet tables are always on a local or mounted file system, so they read without Spark."""

    def __init__(
        self, config: ParquetConfig, spark: SparkSession | Callable[[], SparkSession]
    ) -> None:
        path = config.path.removeprefix("file://")
        if "://" in path:
            raise ConfigError(
                f"offline_store path {config.path}: parquet tables need a local or mounted "
                "file system (their swaps rely on atomic renames); use type: delta"
            )
        self.path = Path(path)
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        """The session; when given as a function, called on first use (local reads need none)."""
        return self._spark() if callable(self._spark) else self._spark

    def table_path(self, view_name: str) -> Path:
        return self.path / view_name

    def exists(self, view_name: str) -> bool:
        return (self.table_path(view_name) / _SCHEMA_FILE).is_file()

    def current_version(self, view_name: str) -> int | None:
        return None

    def read(self, view_name: str, version: int | None = None) -> DataFrame:
        """The whole table; ``version`` is refused, Parquet tables keep no history."""
        from granero.offline.spark_errors import spark_errors

        table = self._readable(view_name, version)
        schema = self._schema(table)
        if not day_dirs(table):
            return self.spark.createDataFrame([], schema)
        with spark_errors(RetrievalError, f"reading the offline table of {view_name!r}"):
            return self.spark.read.schema(schema).parquet(str(table))

    def read_arrow(
        self,
        view_name: str,
        version: int | None,
        columns: list[str],
        first_day: date,
        last_day: date,
    ) -> pa.Table:
        """The rows of the days [first_day, last_day], in process (pyarrow, no Spark).

        Only the ``columns`` the table has, in the given order; other days' files are not opened.
        """
        days = self._days(view_name, version, first_day, last_day)
        present = set(days.schema.names)
        return days.to_table(columns=[c for c in columns if c in present])

    def count_rows(
        self, view_name: str, version: int | None, first_day: date, last_day: date
    ) -> int:
        """Rows of the days [first_day, last_day], from the Parquet footers (no data read)."""
        return self._days(view_name, version, first_day, last_day).count_rows()

    def _days(
        self, view_name: str, version: int | None, first_day: date, last_day: date
    ) -> ds.Dataset:
        import pyarrow.dataset as ds

        table = self._readable(view_name, version)
        files = [
            file
            for day, folder in sorted(day_dirs(table).items())
            if first_day <= day <= last_day
            for file in data_files(folder)
        ]
        return ds.dataset(
            files,
            schema=self._arrow_schema(table),
            format=ds.ParquetFileFormat(
                read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")
            ),
            partitioning="hive",
            partition_base_dir=str(table),
        )

    def _readable(self, view_name: str, version: int | None) -> Path:
        """The table's folder; refuses a ``version`` (none are kept) and a missing table."""
        if version is not None:
            raise RetrievalError(
                f"offline table of {view_name!r} is Parquet, which keeps no versions "
                f"(asked for version {version}); use offline_store type: delta for time travel"
            )
        table = self.table_path(view_name)
        if not self.exists(view_name):
            raise RetrievalError(
                f"feature view {view_name!r} has no Parquet offline table at {table}"
            )
        return table

    def _arrow_schema(self, table: Path) -> pa.Schema:
        """The table schema as Arrow (pyspark's own mapping; no JVM): timestamps UTC µs."""
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(self._schema(table), timestamp_utc=True)

    def _schema(self, table: Path):
        from pyspark.sql.types import StructType

        return StructType.fromJson(json.loads((table / _SCHEMA_FILE).read_text()))

    def write_window(
        self, view_name: str, frame: DataFrame, interval: Interval, partition_columns: list[str]
    ) -> WindowWrite:
        """Stage the new content of the window's days, then swap those days in."""
        from granero.offline.tables import WindowWrite

        table = self.table_path(view_name)
        table.mkdir(parents=True, exist_ok=True)
        with self._locked(table):
            finish_swap(table)
            clear_killed_writes(table)
            staging = table / "_staging" / uuid.uuid4().hex
            try:
                rows = self._stage(view_name, frame, interval, partition_columns, staging)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self._swap(table, staging, interval)
        return WindowWrite(rows, None)

    def append(self, view_name: str, rows: pa.Table, schema: StructType, writer_id: str, sequence: int,
               partition_columns: list[str]) -> None:
        """Append ``rows`` once per (``writer_id``, ``sequence``): their files are named by that
        pair, moved in under the table lock, then recorded in ``_appended``; a replay of a
        recorded pair adds nothing, one of a pair killed midway replaces its own files."""
        from granero.offline.landing import batch_key
        from granero.offline.spark_errors import arrow_frame

        table = self.table_path(view_name)
        table.mkdir(parents=True, exist_ok=True)
        key = batch_key(f"{writer_id}/{sequence}")
        with self._locked(table):
            finish_swap(table)
            clear_killed_writes(table)
            if (table / _APPENDED / key).is_file():
                return
            staging = table / _STAGING / key
            try:
                frame = arrow_frame(self.spark, rows, schema, f"appending to the offline table of {view_name!r}")
                self._stage_append(view_name, frame, partition_columns, staging)
                _move_appended(staging, table, f"{key}-")
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            atomic_write(table / _APPENDED / key, b"")

    def _stage_append(self, view_name: str, frame: DataFrame, partitions: list[str], staging: Path) -> None:
        from granero.offline.schema import parquet_write_options
        from granero.offline.spark_errors import spark_errors

        with spark_errors(MaterializationError, f"appending to the offline table of {view_name!r}"):
            writer = frame.write.options(**parquet_write_options(frame))
            writer.partitionBy(*partitions).mode("overwrite").parquet(str(staging))
        if not self.exists(view_name):
            atomic_write(self.table_path(view_name) / _SCHEMA_FILE, frame.schema.json().encode())

    def _locked(self, table: Path) -> contextlib.AbstractContextManager[None]:
        return exclusive_lock(table / "_lock")

    def _stage(
        self,
        view_name: str,
        frame: DataFrame,
        interval: Interval,
        partitions: list[str],
        staging: Path,
    ) -> int:
        """Write the kept rows of the touched days plus ``frame`` to ``staging``; count new rows."""
        from granero.offline.delta import window_predicate
        from granero.offline.schema import conform, parquet_write_options
        from granero.offline.spark_errors import spark_errors

        with spark_errors(MaterializationError, f"writing the offline table of {view_name!r}"):
            content = frame
            kept = self._kept_rows(view_name, interval)
            if kept is not None:
                content = conform(kept, frame.schema).unionByName(frame)
            writer = content.write.options(**parquet_write_options(frame))
            writer.partitionBy(*partitions).mode("overwrite").parquet(str(staging))
            written = self.spark.read.schema(frame.schema).parquet(str(staging))
            rows = written.where(window_predicate(interval)).count() if day_dirs(staging) else 0
        atomic_write(self.table_path(view_name) / _SCHEMA_FILE, frame.schema.json().encode())
        return rows

    def _kept_rows(self, view_name: str, interval: Interval) -> DataFrame | None:
        """Rows of the window's days that lie outside the window (they stay)."""
        from granero.offline.delta import window_predicate

        table = self.table_path(view_name)
        first, last = window_days(interval)
        touched = [p for day, p in day_dirs(table).items() if first <= day <= last]
        if not touched or not self.exists(view_name):
            return None
        existing = self.spark.read.schema(self._schema(table)).option("basePath", str(table))
        return existing.parquet(*map(str, touched)).where(f"NOT ({window_predicate(interval)})")

    def _swap(self, table: Path, staging: Path, interval: Interval) -> None:
        """Journal the swap, then run it; once journaled, only the swap removes staged files."""
        first, last = window_days(interval)
        staged = sorted(day_dirs(staging))
        replaced = [d for d in day_dirs(table) if first <= d <= last and d not in staged]
        journal = {
            "staging": staging.name,
            "replace": [str(d) for d in staged],
            "delete": [str(d) for d in sorted(replaced)],
        }
        atomic_write(table / _JOURNAL, json.dumps(journal).encode())
        finish_swap(table)


def finish_swap(table: Path) -> None:
    """Roll a journaled swap forward (idempotent: safe to re-run after a crash at any point)."""
    journal_file = table / _JOURNAL
    if not journal_file.is_file():
        return
    journal = json.loads(journal_file.read_text())
    staging = table / "_staging" / journal["staging"]
    trash = table / "_trash" / journal["staging"]
    trash.mkdir(parents=True, exist_ok=True)
    for day in journal["delete"]:
        _move_if_present(table / f"{_DAY_PREFIX}{day}", trash / f"{_DAY_PREFIX}{day}")
    for day in journal["replace"]:
        name = f"{_DAY_PREFIX}{day}"
        if (staging / name).exists():
            _move_if_present(table / name, trash / name)
            os.rename(staging / name, table / name)
    os.unlink(journal_file)
    for finished in (trash, staging):
        shutil.rmtree(finished, ignore_errors=True)
        with contextlib.suppress(OSError):
            finished.parent.rmdir()  # only when no other write is staging


def clear_killed_writes(table: Path) -> None:
    """Remove what writes killed before their journal left behind (staged days, trash).

    Call under the table lock, after ``finish_swap``: no other write of the table is running
    then, and a journaled swap has used its staged days, so whatever remains is dead.
    """
    for leftover in (_STAGING, _TRASH):
        shutil.rmtree(table / leftover, ignore_errors=True)


def _move_appended(staging: Path, table: Path, prefix: str) -> None:
    """Move the staged data files into the table, each named ``prefix`` + its own name; files of
    an earlier, killed attempt with that prefix are removed first."""
    for day in day_dirs(table).values():
        for stale in data_files(day):
            if os.path.basename(stale).startswith(prefix):
                os.unlink(stale)
    for day in day_dirs(staging).values():
        for staged in data_files(day):
            target = table / Path(staged).relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, target.with_name(prefix + target.name))


def _move_if_present(source: Path, target: Path) -> None:
    if source.exists():
        os.rename(source, target)
