"""Delta Lake offline tables (the default): atomic commits, replaceWhere windows, time travel.

A window write is one Delta ``overwrite`` commit with ``replaceWhere`` on the window's
``event_timestamp`` range (plus the ``event_date`` range, so only the window's day partitions are
scanned). Delta's transaction log makes it atomic: until the commit lands readers see the previous
version, and a failed job leaves only unreferenced files that ``VACUUM`` removes. New features
(columns) are merged into the table schema; older rows read them as null.

Concurrent writers of the *same* view are serialised by Delta's optimistic concurrency (the
second fails with a conflict error); ``table_version`` is read right after the commit, so under
concurrent writers it may name a later commit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from granero.errors import MaterializationError, RetrievalError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

    from granero.offline.tables import WindowWrite
    from granero.registry import Interval


class DeltaConfig(BaseModel):
    """``offline_store: {type: delta, path: ...}``; one table per view under ``path``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["delta"] = "delta"
    path: str = "data/offline"


def _timestamp_literal(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"TIMESTAMP'{utc:%Y-%m-%d %H:%M:%S.%f}+00:00'"


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

    def __init__(self, config: DeltaConfig, spark: SparkSession) -> None:
        self.path = config.path.rstrip("/")
        self.spark = spark

    def table_path(self, view_name: str) -> str:
        return f"{self.path}/{view_name}"

    def exists(self, view_name: str) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.table_path(view_name))

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

        if not self.exists(view_name):
            return None
        return self._latest_commit(view_name)["version"]

    def write_window(
        self, view_name: str, frame: DataFrame, interval: Interval, partition_columns: list[str]
    ) -> WindowWrite:
        """One atomic commit replacing the rows of [start, end) with ``frame``."""
        from granero.offline.spark_errors import spark_errors

        writer = (
            frame.write.format("delta")
            .partitionBy(*partition_columns)
            .option("mergeSchema", "true")
        )
        if self.exists(view_name):
            writer = writer.mode("overwrite").option("replaceWhere", window_predicate(interval))
        else:
            writer = writer.mode("append")
        with spark_errors(MaterializationError, f"writing the offline table of {view_name!r}"):
            writer.save(self.table_path(view_name))
            return self._last_write(view_name)

    def _last_write(self, view_name: str) -> WindowWrite:
        from granero.offline.tables import WindowWrite

        commit = self._latest_commit(view_name)
        metrics = commit["operationMetrics"] or {}
        return WindowWrite(int(metrics.get("numOutputRows", 0)), commit["version"])

    def _latest_commit(self, view_name: str) -> Row:
        """The newest entry of the table's history (read from the log on the driver)."""
        from delta.tables import DeltaTable

        commit = DeltaTable.forPath(self.spark, self.table_path(view_name)).history(1).first()
        if commit is None:
            raise MaterializationError(f"offline table of {view_name!r} has an empty Delta log")
        return commit
