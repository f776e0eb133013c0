"""Micro-batches of a view's stream: the online writer (fast, at least once) and the durable
writer (exactly once), each the ``foreachBatch`` of its own query (``streaming.job``).

Online (``OnlineBatchWriter``, a short trigger): parse (Kafka) → rows that can become table rows
→ the view's filter, transformations and lossless casts (``materialize.dated_rows``, the batch
pipeline's row-by-row part, held in the streaming plan itself) → per batch, full ties dropped
(``materialize.without_full_ties``) → online, write-if-newer. One Spark job per batch; nothing
else waits on it. A batch replayed after a kill writes the same rows again, which write-if-newer
makes a no-op.

Durable (``MicroBatchWriter``, a longer trigger), in this order:

    parse → rows that cannot become table rows → dead letters (one folder per batch)
    → ``table_rows`` → online only where no online query runs (aggregate views: their
      entities recomputed from the offline table) → landed (``offline.landing``)
    → appended to the offline table → ``freshness.record_stream_progress``

Every durable step is idempotent for a given batch: a dead-letter folder and a landed file are
named by the query's id and the batch id (a replay rewrites the same folder, finds the same
file), the offline append is keyed by the same pair (Delta's transaction identifiers: a ``txn``
action, committed in process by delta-rs on a local table, by Spark elsewhere).
Spark commits the batch's Kafka offsets to the checkpoint only after ``foreachBatch`` returned,
so a process killed anywhere in a batch replays that batch on restart: nothing lost, nothing
twice.

A row becomes a dead letter (raw value, error, topic/partition/offset) when its message does not
parse, when it has no join key or event time, or when a value would change in the cast to its
declared dtype; such rows never fail a query (the online writer skips them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from granero.definitions import FeatureView, KafkaSource, RepoDefinitions
from granero.errors import MaterializationError
from granero.freshness import record_stream_progress
from granero.offline.casts import rule
from granero.offline.landing import write_landed
from granero.offline.materialize import (
    EPOCH,
    column_label,
    dated_rows,
    input_types,
    source_inputs,
    table_rows,
    without_full_ties,
)
from granero.offline.schema import EVENT_DATE, EVENT_TIMESTAMP, partition_columns, table_dtypes
from granero.offline.spark_casts import would_change
from granero.online.sync import write_table
from granero.registry import Interval
from granero.streaming.parse import ERROR, RECORD_COLUMNS, parsed

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

    from granero.offline.tables import OfflineStore
    from granero.online.redis import RedisStore

ALL_TIME = Interval(start=EPOCH, end=datetime(9999, 1, 1, tzinfo=UTC))
"""A stream's rows are not windowed: every event time is taken."""
QUERY_ID_WAIT_SECONDS = 60.0


@dataclass
class StreamTargets:
    """Where a view's stream writes: the stores and folders, built once per process."""

    offline: OfflineStore
    online: RedisStore | None
    landing: str
    dead_letters: str
    sync_aggregates: object = None
    """For an aggregate view: ``f(interval)`` recomputing its entities with events in ``interval``
    from the offline table (the facade's sync); None for plain views."""
    write_online: bool = True
    """False when the view's own online query writes its rows online (``OnlineBatchWriter``)."""


@dataclass
class OnlineBatchWriter:
    """The online query's ``foreachBatch``: the batch's table rows, write-if-newer, nothing else."""

    view: FeatureView
    """The view as the stream reads it (``source`` is the stream source)."""
    defs: RepoDefinitions
    online: RedisStore
    totals: dict[str, int] = field(default_factory=lambda: {"batches": 0, "rows": 0})

    def rows(self, stream: DataFrame) -> DataFrame:
        """The query's rows, typed row by row in the streaming plan itself (``dated_rows``), so no
        batch pays for planning them again; full ties need the whole batch (``__call__``)."""
        return dated_rows(good_rows(checked_rows(stream, self.defs, self.view)), self.defs, self.view, ALL_TIME)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        rows = without_full_ties(batch, self.defs, self.view).toArrow().drop_columns([EVENT_DATE])
        if rows.num_rows:
            write_table(self.online, self.view, self.defs.join_keys(self.view), rows)
        self.totals["batches"] += 1
        self.totals["rows"] += rows.num_rows


@dataclass
class MicroBatchWriter:
    """``foreachBatch``'s function for one view's query (it runs on the driver)."""

    view: FeatureView
    """The view as the stream reads it: ``source`` is the stream source (timestamps, mapping)."""
    defs: RepoDefinitions
    targets: StreamTargets
    query_id: str | None = None
    totals: dict[str, int] = field(default_factory=lambda: {"batches": 0, "rows": 0, "dead_letters": 0})
    """What this process wrote so far (a replayed batch counts again)."""
    _started: threading.Event = field(default_factory=threading.Event)

    def started(self, query_id: str) -> None:
        """The query's id, known once it started; kept across restarts in its checkpoint."""
        self.query_id = query_id
        self._started.set()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if not self._started.wait(QUERY_ID_WAIT_SECONDS):
            raise MaterializationError(f"stream of view {self.view.name!r}: the query never reported its id")
        checked = checked_rows(batch, self.defs, self.view).persist()
        try:
            dead = self.write_dead_letters(checked, batch_id)
            rows = self.write_rows(good_rows(checked), batch_id)
        finally:
            checked.unpersist()
        for name, count in (("batches", 1), ("rows", rows), ("dead_letters", dead)):
            self.totals[name] += count
        if self.targets.online is not None:
            record_stream_progress(self.targets.online, self.view.name, batch_id=batch_id, rows=rows,
                                   dead_letters=dead, at=datetime.now(UTC))

    def write_dead_letters(self, checked: DataFrame, batch_id: int) -> int:
        """The batch's unreadable rows, in a folder of their own (rewritten by a replay); how many."""
        from pyspark.sql import functions as F

        dead = checked.where(F.col(ERROR).isNotNull())
        count = dead.count()
        if count:
            letters = dead.select(*RECORD_COLUMNS, F.col(ERROR).alias("error"),
                                  F.lit(batch_id).alias("batch_id"))
            folder = f"{self.targets.dead_letters}/{self.view.name}/batch={self.batch_key(batch_id)}"
            letters.write.mode("overwrite").parquet(folder)
        return count

    def write_rows(self, good: DataFrame, batch_id: int) -> int:
        """Typed rows of the batch: online, landed, appended to the offline table; how many."""
        typed = table_rows(good, self.defs, self.view, ALL_TIME)
        table = typed.toArrow()
        if table.num_rows == 0:
            return 0
        rows = table.drop_columns([EVENT_DATE])
        if self.targets.write_online and self.targets.online is not None and self.view.online \
                and not self.view.is_aggregate:
            write_table(self.targets.online, self.view, self.defs.join_keys(self.view), rows)
        write_landed(self.targets.landing, self.view.name, rows, self.batch_key(batch_id))
        self.targets.offline.append(self.view.name, table, typed.schema, f"{self.view.name}-{self.query_id}",
                                    batch_id, partition_columns(self.view))
        if self.targets.sync_aggregates is not None and self.view.online:
            self.targets.sync_aggregates(event_span(rows))
        return table.num_rows

    def batch_key(self, batch_id: int) -> str:
        """``<view>-<query id>-<batch id>``: the same for a replay of the batch, new for a new query."""
        return f"{self.view.name}-{self.query_id}-{batch_id}"


def checked_rows(batch: DataFrame, defs: RepoDefinitions, view: FeatureView) -> DataFrame:
    """The batch's rows with ERROR set where a row cannot become a table row."""
    from pyspark.sql import functions as F

    source = view.source
    rows = parsed(batch, source) if isinstance(source, KafkaSource) else _as_records(batch)
    if view.filter:
        rows = rows.where(F.col(ERROR).isNotNull() | F.coalesce(F.expr(view.filter), F.lit(False)))
    return rows.withColumn(ERROR, F.coalesce(F.col(ERROR), row_problem(rows, defs, view)))


def good_rows(checked: DataFrame) -> DataFrame:
    """The rows of ``checked_rows`` that can become table rows, without the record's columns."""
    from pyspark.sql import functions as F

    return checked.where(F.col(ERROR).isNull()).drop(ERROR, *RECORD_COLUMNS)


def _as_records(rows: DataFrame) -> DataFrame:
    """A Delta stream's rows with the dead-letter columns a Kafka record has (value: the row as JSON)."""
    from pyspark.sql import functions as F

    value = F.to_json(F.struct(*[F.col(f"`{c}`") for c in rows.columns])).cast("binary")
    return rows.withColumns({"value": value, "topic": F.lit(None).cast("string"),
                             "partition": F.lit(None).cast("int"), "offset": F.lit(None).cast("bigint"),
                             ERROR: F.lit(None).cast("string")})


def row_problem(rows: DataFrame, defs: RepoDefinitions, view: FeatureView) -> Column:
    """Per row, why it cannot become a table row (null when it can): a missing key or event time,
    or a value its cast to the declared dtype would change (``offline.casts``)."""
    from pyspark.sql import functions as F

    inputs = source_inputs(defs, view)
    types, dtypes = input_types(rows, inputs), dict(table_dtypes(defs, view))
    problems = [F.when(inputs[name].isNull(), F.lit(f"{column_label(view, name)}: missing"))
                for name in [*defs.join_keys(view), EVENT_TIMESTAMP]]
    for name, column in inputs.items():
        if rule(types[name], dtypes[name]).check is not None:
            problems.append(F.when(would_change(column, types[name], dtypes[name]), F.lit(
                f"{column_label(view, name)}: a {types[name]} value that {dtypes[name]} cannot hold exactly")))
    return F.coalesce(*problems)


def event_span(rows: pa.Table) -> Interval:
    """The smallest interval holding every event time of ``rows``."""
    import pyarrow.compute as pc

    span = pc.min_max(rows[EVENT_TIMESTAMP]).as_py()
    return Interval(start=span["min"], end=span["max"] + timedelta(microseconds=1))
