"""Delta Lake offline tables (the default): atomic commits, replaceWhere windows, time travel.

A window write is one Delta ``overwrite`` commit with ``replaceWhere`` on the window's
``event_timestamp`` range (plus the ``event_date`` range, so only the window's day partitions are
scanned). Delta's transaction log makes it atomic: until the commit lands readers see the previous
version, and a failed job leaves only unreferenced files that ``VACUUM`` removes. New features
(columns) are merged into the table schema; older rows read them as null.

Concurrent writers of the *same* view are serialised by Delta's optimistic concurrency (the
second fails with a conflict error). A window write tags its commit (``userMetadata``) and reports
that commit's version and row count, whatever other writers (a stream's appends) committed since;
an empty frame over an empty window commits nothing and reports 0 rows at the version before.

Versions and commit metrics are read straight from the ``_delta_log`` folder on the driver (list
the folder, read one commit file) rather than through ``DeltaTable.history``, which runs a Spark
job: that job was a fixed cost of every materialization and every training retrieval. A local
folder is listed directly, without the JVM.

Tables on a local file system are also read in process, without Spark, by delta-rs (the
``deltalake`` package): ``read_arrow`` prunes day partitions from the log, and ``count_rows`` sums
the ``numRecords`` statistics of the add actions without reading any data.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from granero.errors import GraneroError, MaterializationError, RetrievalError
from granero.offline.schema import EVENT_DATE

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from granero.offline.tables import WindowWrite
    from granero.registry import Interval


class DeltaConfig(BaseModel):
    """``offline_store: {type: delta, path: ...}``; one table per view under ``path``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["delta"] = "delta"
    path: str = "data/offline"


WRITE_ID = "granero-window-write:"
"""Prefix of the ``userMetadata`` a window write tags its commit with, to find that commit."""

_COMMIT_FILE = re.compile(r"(\d{20})\.json")
"""A commit of the Delta log: ``<version, 20 digits>.json`` (checkpoints and CRCs differ)."""


def latest_version(log_file_names: list[str]) -> int | None:
    """The newest commit version among a ``_delta_log`` folder's file names (None: no commit)."""
    versions = [int(m.group(1)) for n in log_file_names if (m := _COMMIT_FILE.fullmatch(n))]
    return max(versions, default=None)


def output_rows(commit_text: str) -> int:
    """``numOutputRows`` of a commit file's ``commitInfo`` action (0 when absent)."""
    return info_output_rows(commit_info(commit_text))


def info_output_rows(info: dict) -> int:
    return int((info.get("operationMetrics") or {}).get("numOutputRows", 0))


def commit_info(commit_text: str) -> dict:
    """The ``commitInfo`` action of a commit file ({} when absent)."""
    for line in commit_text.splitlines():
        info = json.loads(line).get("commitInfo") if line.strip() else None
        if info is not None:
            return info
    return {}


def _timestamp_literal(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"TIMESTAMP'{utc:%Y-%m-%d %H:%M:%S.%f}+00:00'"


def local_path(path: str) -> Path | None:
    """The local file system path of a table location, or None for a remote URI (s3a://...)."""
    if path.startswith("file://"):
        return Path(path.removeprefix("file://"))
    return None if "://" in path else Path(path)


def window_predicate(interval: Interval) -> str:
    """SQL predicate selecting exactly the window's rows (and only its day partitions)."""
    first_day = interval.start.astimezone(UTC).date()
    last_day = (interval.end - timedelta(microseconds=1)).astimezone(UTC).date()
    return (
        f"event_date >= DATE'{first_day}' AND event_date <= DATE'{last_day}'"
        f" AND event_timestamp >= {_timestamp_literal(interval.start)}"
        f" AND event_timestamp < {_timestamp_literal(interval.end)}"
    )


class DeltaStore:
    """Delta tables at ``<path>/<view name>``."""

    kind = "delta"

    def __init__(
        self, config: DeltaConfig, spark: SparkSession | Callable[[], SparkSession]
    ) -> None:
        self.path = config.path.rstrip("/")
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        """The session; when given as a function, called on first use (local reads need none)."""
        return self._spark() if callable(self._spark) else self._spark

    @property
    def local(self) -> bool:
        """Whether the tables are on this machine's file system (then they read without Spark)."""
        return local_path(self.path) is not None

    def table_path(self, view_name: str) -> str:
        return f"{self.path}/{view_name}"

    def exists(self, view_name: str) -> bool:
        """Whether the view's table has a commit (a listing of its log, no Spark job)."""
        return self._latest_version(view_name) is not None

    def read(self, view_name: str, version: int | None = None) -> DataFrame:
        """The table, at ``version`` when given (Delta time travel)."""
        from granero.offline.spark_errors import spark_errors

        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        with spark_errors(RetrievalError, f"reading the offline table of {view_name!r}"):
            return reader.load(self.table_path(view_name))

    def current_version(self, view_name: str) -> int | None:
        """The latest committed version, or None when the table does not exist."""
        return self._latest_version(view_name)

    def read_arrow(
        self,
        view_name: str,
        version: int | None,
        columns: list[str],
        first_day: date,
        last_day: date,
    ) -> pa.Table:
        """The table's rows of the days [first_day, last_day] at ``version``, in process (delta-rs).

        Only the ``columns`` the table has, in the given order; files of other days are not read.
        """
        with _delta_rs_errors(view_name):
            table = self._delta_rs(view_name, version)
            present = set(table.schema().to_arrow().names)
            return self._days(table, first_day, last_day).to_table(
                columns=[c for c in columns if c in present]
            )

    def count_rows(
        self, view_name: str, version: int | None, first_day: date, last_day: date
    ) -> int:
        """Rows of the days [first_day, last_day], from the log's statistics (no data read)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        with _delta_rs_errors(view_name):
            table = self._delta_rs(view_name, version)
            files = pa.table(table.get_add_actions(flatten=True))
            day = files[f"partition.{EVENT_DATE}"]
            in_days = pc.and_(pc.greater_equal(day, first_day), pc.less_equal(day, last_day))
            counts = files.filter(in_days)["num_records"]
            if counts.null_count:  # a file written without statistics: count its footer
                return self._days(table, first_day, last_day).count_rows()
            return pc.sum(counts).as_py() or 0

    def _delta_rs(self, view_name: str, version: int | None) -> DeltaTable:
        from deltalake import DeltaTable

        path = local_path(self.table_path(view_name))
        if path is None:
            raise RetrievalError(
                f"offline table of {view_name!r} at {self.table_path(view_name)} is not on a "
                "local file system; only Spark reads it"
            )
        return DeltaTable(path, version=version)

    def _days(self, table: DeltaTable, first_day: date, last_day: date) -> ds.Dataset:
        import pyarrow.dataset as ds

        return table.to_pyarrow_dataset(
            parquet_read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us"),
            file_pruning_predicate=[
                (EVENT_DATE, ">=", first_day.isoformat()),
                (EVENT_DATE, "<=", last_day.isoformat()),
            ],
        )

    def write_window(
        self, view_name: str, frame: DataFrame, interval: Interval, partition_columns: list[str]
    ) -> WindowWrite:
        """One atomic commit replacing the rows of [start, end) with ``frame``."""
        from granero.offline.schema import parquet_write_options
        from granero.offline.spark_errors import spark_errors

        write_id, before = uuid.uuid4().hex, self._latest_version(view_name)
        writer = (
            frame.write.format("delta")
            .partitionBy(*partition_columns)
            .option("mergeSchema", "true")
            .option("userMetadata", f"{WRITE_ID}{write_id}")
            .options(**parquet_write_options(frame))
        )
        if before is not None:
            writer = writer.mode("overwrite").option("replaceWhere", window_predicate(interval))
        else:
            writer = writer.mode("append")
        with spark_errors(MaterializationError, f"writing the offline table of {view_name!r}"):
            writer.save(self.table_path(view_name))
            return self._window_write(view_name, write_id, before)

    def append(self, view_name: str, rows: pa.Table, schema: StructType, writer_id: str, sequence: int,
               partition_columns: list[str]) -> None:
        """Append ``rows`` once per (``writer_id``, ``sequence``): Delta's transaction identifiers
        (a ``txn`` action: Spark's ``txnAppId``/``txnVersion``) skip a write whose sequence the
        writer already committed, so a replayed stream micro-batch adds nothing. Sequences of one
        writer must increase.

        On a local file system delta-rs commits the Arrow rows in process: 300k rows took ~0.07 s,
        where Spark's ``createDataFrame`` and Delta write took ~5 s of both cores, which stalled
        the online stream query beside it (``bench.freshness``). Elsewhere (object stores, whose
        credentials Spark holds) Spark writes them, typed by ``schema``."""
        from granero.offline.spark_errors import arrow_frame

        path = local_path(self.table_path(view_name))
        if path is None:
            frame = arrow_frame(self.spark, rows, schema, f"appending to the offline table of {view_name!r}")
            self._spark_append(view_name, frame, writer_id, sequence, partition_columns)
            return
        with _delta_rs_errors(view_name, MaterializationError, "appending to"):
            if _committed_sequence(path, writer_id) >= sequence:
                return
            _delta_rs_append(path, rows, writer_id, sequence, partition_columns)

    def _spark_append(self, view_name: str, frame: DataFrame, writer_id: str, sequence: int,
                      partition_columns: list[str]) -> None:
        from granero.offline.schema import parquet_write_options
        from granero.offline.spark_errors import spark_errors

        writer = (
            frame.write.format("delta").mode("append").partitionBy(*partition_columns)
            .option("mergeSchema", "true").options(**parquet_write_options(frame))
            .option("txnAppId", writer_id).option("txnVersion", str(sequence))
        )
        with spark_errors(MaterializationError, f"appending to the offline table of {view_name!r}"):
            writer.save(self.table_path(view_name))

    def _window_write(self, view_name: str, write_id: str, before: int | None) -> WindowWrite:
        """The commit tagged ``write_id`` among those after ``before``: its rows and version.
        None of them: Delta committed nothing (an empty frame over an empty window), so 0 rows
        and the table as it was; never another writer's commit (a stream's append) nor the
        previous one's count."""
        from granero.offline.tables import WindowWrite

        latest = self._latest_version(view_name)
        if latest is None:
            raise MaterializationError(f"offline table of {view_name!r} has an empty Delta log")
        for version in range(latest, -1 if before is None else before, -1):
            info = commit_info(self._read_log_file(view_name, f"{version:020d}.json"))
            if info.get("userMetadata") == f"{WRITE_ID}{write_id}":
                return WindowWrite(info_output_rows(info), version)
        return WindowWrite(0, before)

    def _latest_version(self, view_name: str) -> int | None:
        """The newest commit, from a listing of the table's log (no Spark job)."""
        local = local_path(self.table_path(view_name))
        if local is not None:
            folder = local / "_delta_log"
            return latest_version(os.listdir(folder)) if folder.is_dir() else None
        fs, log = self._log_folder(view_name)
        if not fs.exists(log):
            return None
        return latest_version([status.getPath().getName() for status in fs.listStatus(log)])

    def _read_log_file(self, view_name: str, name: str) -> str:
        local = local_path(self.table_path(view_name))
        if local is not None:
            return (local / "_delta_log" / name).read_text()
        fs, log = self._log_folder(view_name)
        jvm = self.spark.sparkContext._jvm
        stream = fs.open(jvm.org.apache.hadoop.fs.Path(log, name))
        try:
            return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def _log_folder(self, view_name: str) -> tuple[object, object]:
        """The Hadoop file system and path of the table's ``_delta_log`` (any URI scheme)."""
        context = self.spark.sparkContext
        log = context._jvm.org.apache.hadoop.fs.Path(f"{self.table_path(view_name)}/_delta_log")
        return log.getFileSystem(context._jsc.hadoopConfiguration()), log


def _committed_sequence(path: Path, writer_id: str) -> int:
    """The last sequence ``writer_id`` committed to the table at ``path``; -1 for none (or no table)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        committed = DeltaTable(path).transaction_version(writer_id)
    except TableNotFoundError:
        return -1
    return -1 if committed is None else committed


def _delta_rs_append(path: Path, rows: pa.Table, writer_id: str, sequence: int, partition_columns: list[str]) -> None:
    """One append commit of ``rows`` holding the writer's ``txn`` (columns added or missing are
    merged into the table's schema, as Spark's ``mergeSchema`` does; a type that differs fails);
    float columns without a Parquet dictionary (``schema.parquet_write_options``' reason)."""
    import pyarrow as pa
    from deltalake import ColumnProperties, CommitProperties, Transaction, WriterProperties, write_deltalake

    floats = [f.name for f in rows.schema if pa.types.is_floating(f.type)]
    write_deltalake(
        str(path), rows, mode="append", partition_by=partition_columns or None, schema_mode="merge",
        writer_properties=WriterProperties(
            column_properties={name: ColumnProperties(dictionary_enabled=False) for name in floats}
        ),
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id=writer_id, version=sequence)]),
    )


@contextlib.contextmanager
def _delta_rs_errors(
    view_name: str, error_class: type[GraneroError] = RetrievalError, doing: str = "reading"
) -> Iterator[None]:
    """delta-rs failures (a missing version, an unreadable log; for an append, a conflict or a
    schema that does not merge) as one precise ``error_class``."""
    from deltalake.exceptions import DeltaError

    try:
        yield
    except DeltaError as error:
        raise error_class(f"{doing} the offline table of {view_name!r}: {error}") from error
