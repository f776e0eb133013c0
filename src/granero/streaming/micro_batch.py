"""Micro-batches of a view's stream: the online writer (a short trigger) and the durable writer
(exactly once, for views the online writer does not cover), each the ``foreachBatch`` of its own
query (``streaming.job``).

Online (``OnlineBatchWriter``; plain views served online): parse (Kafka) → per row, either the
typed table row (the view's filter, transformations and lossless casts, ``materialize``'s
row-by-row rule, held in the streaming plan itself) or why it cannot be one → to Arrow in one
Spark job (a second one, through ``materialize.drop_full_ties``, only for a batch holding full
ties), then in process: online, write-if-newer → landed (``offline.landing``) → dead letters
(``streaming.dead_letters``) → ``freshness.record_stream_progress``. The offline table gets the
landed rows from ``offline.landed_append`` (``streaming.job`` runs it every
``offline_trigger_interval``): the messages are parsed once, by this query.

Durable (``MicroBatchWriter``; aggregate views, whose online values are recomputed from the
offline table, and views not served online), in this order:

    parse → rows that cannot become table rows → dead letters
    → ``table_rows`` → online (aggregate views: their entities recomputed from the offline table)
    → landed → appended to the offline table → ``freshness.record_stream_progress``

Every step is idempotent for a given batch: landed files and dead letters are named by the
query's id and the batch id (a replay finds the same file, rewrites the same folder), the
durable writer's offline append is keyed by the same pair (Delta's transaction identifiers: a
``txn`` action), online writes are write-if-newer. Spark commits a batch's Kafka offsets to the
checkpoint only after ``foreachBatch`` returned, so a process killed anywhere in a batch replays
that batch, with the same offsets, on restart: nothing lost, nothing twice.

A row becomes a dead letter (raw value, error, topic/partition/offset) when its message does not
parse, when it has no join key or event time, or when a value would change in the cast to its
declared dtype; such rows never fail a query.
"""

from __future__ import annotations

import functools
import operator
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
    drop_full_ties,
    input_types,
    inside,
    required_columns,
    source_inputs,
    table_rows,
    typed_columns,
)
from granero.offline.schema import (
    CREATED_TIMESTAMP,
    EVENT_DATE,
    EVENT_TIMESTAMP,
    partition_columns,
    table_dtypes,
    utc_date,
)
from granero.offline.spark_casts import would_change
from granero.online.sync import write_table
from granero.registry import Interval
from granero.streaming.dead_letters import letters_table, write_dead_letters
from granero.streaming.parse import ERROR, RECORD_COLUMNS, parsed

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

    from granero.offline.tables import OfflineStore
    from granero.online.redis import RedisStore

ALL_TIME = Interval(start=EPOCH, end=datetime(9999, 1, 1, tzinfo=UTC))
"""A stream's rows are not windowed: every event time is taken."""
QUERY_ID_WAIT_SECONDS = 60.0
KEEP = "__granero_keep"


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


@dataclass
class QueryIdentity:
    """A query's id, known once it started (``started``) and kept across restarts in its
    checkpoint: batch keys name it, so a replayed batch finds what its first run wrote."""

    view_name: str
    query_id: str | None = None
    _started: threading.Event = field(default_factory=threading.Event)

    def started(self, query_id: str) -> None:
        self.query_id = query_id
        self._started.set()

    def batch_key(self, batch_id: int) -> str:
        """``<view>-<query id>-<batch id>``: the same for a replay of the batch, new for a new query."""
        if not self._started.wait(QUERY_ID_WAIT_SECONDS):
            raise MaterializationError(f"stream of view {self.view_name!r}: the query never reported its id")
        return f"{self.view_name}-{self.query_id}-{batch_id}"


@dataclass
class OnlineBatchWriter:
    """The online query's ``foreachBatch``: online, landed, dead letters, from one Spark job."""

    view: FeatureView
    """The view as the stream reads it (``source`` is the stream source)."""
    defs: RepoDefinitions
    targets: StreamTargets
    identity: QueryIdentity = field(init=False)
    totals: dict[str, int] = field(default_factory=lambda: {"batches": 0, "rows": 0, "dead_letters": 0})

    def __post_init__(self) -> None:
        self.identity = QueryIdentity(self.view.name)

    def rows(self, stream: DataFrame) -> DataFrame:
        """The query's rows, typed row by row in the streaming plan itself (``typed_or_dead``), so
        no batch pays for planning them again; full ties need the whole batch (``__call__``)."""
        return typed_or_dead(checked_rows(stream, self.defs, self.view), self.defs, self.view)

    def batch_rows(self, batch: DataFrame) -> tuple[pa.Table, pa.Table]:
        """The batch's table rows (one per full tie) and dead letters, from one Spark job: the
        batch's rows as they are, or, when some are full ties (rare: a message sent twice), the
        batch again through ``one_per_full_tie`` (the pipeline's own rule, so online and landed
        rows keep the row a materialization keeps). A batch without ties needs no shuffle."""
        rows, dead = split_dead(batch.toArrow())
        if has_full_ties(rows, list(self.defs.join_keys(self.view))):
            rows, dead = split_dead(one_per_full_tie(batch, self.defs, self.view).toArrow())
        return rows, dead

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        key = self.identity.batch_key(batch_id)
        rows, dead = self.batch_rows(batch)
        if rows.num_rows and self.targets.online is not None:
            write_table(self.targets.online, self.view, self.defs.join_keys(self.view), rows)
        write_landed(self.targets.landing, self.view.name, rows, key)
        letters = letters_table(dead, batch_id)
        write_dead_letters(batch.sparkSession, self.targets.dead_letters, self.view.name, key, letters)
        for name, count in (("batches", 1), ("rows", rows.num_rows), ("dead_letters", dead.num_rows)):
            self.totals[name] += count
        if self.targets.online is not None:
            record_stream_progress(self.targets.online, self.view.name, batch_id=batch_id, rows=rows.num_rows,
                                   dead_letters=dead.num_rows, at=datetime.now(UTC))


def has_full_ties(rows: pa.Table, keys: list[str]) -> bool:
    """Whether two of ``rows`` share their keys, ``event_timestamp`` and ``created_timestamp``
    (nulls equal, as in Spark's window partitions)."""
    group = [*keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP]
    return rows.num_rows > 1 and rows.group_by(group).aggregate([]).num_rows < rows.num_rows


def typed_or_dead(checked: DataFrame, defs: RepoDefinitions, view: FeatureView) -> DataFrame:
    """``checked_rows`` as table rows (``EVENT_DATE`` too) beside ``ERROR``, the record's columns
    and ``KEEP``: a row with an error keeps its record (its typed columns null), a row without
    one its typed columns (its record null, so the batch carries no raw message it will not
    need). Each typed column is computed only where ERROR is null: a cast check must not fail
    the query on a row that is a dead letter already.

    ``KEEP`` is false for a table row the pipeline leaves out (no key or event time after its
    casts); ``split_dead`` drops those. A ``where`` here would
    be pushed below the parse by Spark's optimizer, which then parses each message once more per
    condition (measured: the online batch's Spark job about twice as long)."""
    from pyspark.sql import functions as F

    ok = F.col(ERROR).isNull()
    columns = typed_columns(checked, defs, view)
    event = columns[EVENT_TIMESTAMP]
    kept = [columns[name].isNotNull() for name in required_columns(defs, view)]
    keep = F.when(ok, functools.reduce(operator.and_, kept)).otherwise(F.lit(True))
    typed = [F.when(ok, column).alias(name) for name, column in columns.items()]
    records = [F.when(~ok, F.col(name)).alias(name) for name in RECORD_COLUMNS]
    return checked.select(*typed, F.when(ok, utc_date(event)).alias(EVENT_DATE), F.col(ERROR), *records,
                          F.coalesce(keep, F.lit(False)).alias(KEEP))


def one_per_full_tie(rows: DataFrame, defs: RepoDefinitions, view: FeatureView) -> DataFrame:
    """``typed_or_dead``'s rows with one row per full tie among table rows; every dead letter kept
    (each its own group, by an id unique in the batch)."""
    from pyspark.sql import functions as F

    dead_id = "__granero_dead_id"
    numbered = rows.withColumn(dead_id, F.when(F.col(ERROR).isNotNull(), F.monotonically_increasing_id()))
    keys = [EVENT_DATE, *defs.join_keys(view), dead_id]
    return drop_full_ties(numbered, keys, view.feature_names).drop(dead_id)


def split_dead(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``one_per_full_tie``'s rows (as Arrow) split: table rows without ``event_date`` (landing
    and online form), and the dead letters' records with their ERROR."""
    import pyarrow.compute as pc

    table = table.filter(table[KEEP])
    dead = pc.is_valid(table[ERROR])
    rows = table.filter(pc.invert(dead)).drop_columns([ERROR, EVENT_DATE, KEEP, *RECORD_COLUMNS])
    return rows, table.filter(dead).select([*RECORD_COLUMNS, ERROR])


@dataclass
class MicroBatchWriter:
    """The durable query's ``foreachBatch`` (it runs on the driver)."""

    view: FeatureView
    """The view as the stream reads it: ``source`` is the stream source (timestamps, mapping)."""
    defs: RepoDefinitions
    targets: StreamTargets
    identity: QueryIdentity = field(init=False)
    totals: dict[str, int] = field(default_factory=lambda: {"batches": 0, "rows": 0, "dead_letters": 0})
    """What this process wrote so far (a replayed batch counts again)."""

    def __post_init__(self) -> None:
        self.identity = QueryIdentity(self.view.name)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        key = self.identity.batch_key(batch_id)
        checked = checked_rows(batch, self.defs, self.view).persist()
        try:
            dead = self.write_dead_letters(checked, batch_id, key)
            rows = self.write_rows(good_rows(checked), batch_id, key)
        finally:
            checked.unpersist()
        for name, count in (("batches", 1), ("rows", rows), ("dead_letters", dead)):
            self.totals[name] += count
        if self.targets.online is not None:
            record_stream_progress(self.targets.online, self.view.name, batch_id=batch_id, rows=rows,
                                   dead_letters=dead, at=datetime.now(UTC))

    def write_dead_letters(self, checked: DataFrame, batch_id: int, key: str) -> int:
        """The batch's unreadable rows (``streaming.dead_letters``); how many."""
        from pyspark.sql import functions as F

        dead = checked.where(F.col(ERROR).isNotNull()).select(*RECORD_COLUMNS, ERROR).toArrow()
        letters = letters_table(dead, batch_id)
        write_dead_letters(checked.sparkSession, self.targets.dead_letters, self.view.name, key, letters)
        return dead.num_rows

    def write_rows(self, good: DataFrame, batch_id: int, key: str) -> int:
        """Typed rows of the batch: landed, appended to the offline table, recomputed online
        (aggregate views); how many. A plain view served online has an online query instead."""
        typed = table_rows(good, self.defs, self.view, ALL_TIME)
        table = typed.toArrow()
        if table.num_rows == 0:
            return 0
        rows = table.drop_columns([EVENT_DATE])
        write_landed(self.targets.landing, self.view.name, rows, key)
        self.targets.offline.append(self.view.name, table, typed.schema, f"{self.view.name}-{self.identity.query_id}",
                                    batch_id, partition_columns(self.view))
        if self.targets.sync_aggregates is not None and self.view.online:
            self.targets.sync_aggregates(event_span(rows))
        return table.num_rows


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
    a value its cast to the declared dtype would change (``offline.casts``), or an event time
    outside ``ALL_TIME`` (kept as a dead letter: a stream has no window that could take it later)."""
    from pyspark.sql import functions as F

    inputs = source_inputs(defs, view)
    types, dtypes = input_types(rows, inputs), dict(table_dtypes(defs, view))
    problems = [F.when(inputs[name].isNull(), F.lit(f"{column_label(view, name)}: missing"))
                for name in [*defs.join_keys(view), EVENT_TIMESTAMP]]
    for name, column in inputs.items():
        if rule(types[name], dtypes[name]).check is not None:
            problems.append(F.when(would_change(column, types[name], dtypes[name]), F.lit(
                f"{column_label(view, name)}: a {types[name]} value that {dtypes[name]} cannot hold exactly")))
    earlier = F.coalesce(*problems)
    # The typed time is read only where nothing failed before: its checked cast fails the query
    # on a value that does not parse (a nested when; a coalesce may be evaluated eagerly).
    event = typed_columns(rows, defs, view)[EVENT_TIMESTAMP]
    outside = F.when(~inside(event, ALL_TIME), F.lit(
        f"{column_label(view, EVENT_TIMESTAMP)}: an event time outside what a stream takes "
        f"(from {ALL_TIME.start:%Y-%m-%d}, before {ALL_TIME.end:%Y-%m-%d})"))
    return F.when(earlier.isNull(), outside).otherwise(earlier)


def event_span(rows: pa.Table) -> Interval:
    """The smallest interval holding every event time of ``rows``."""
    import pyarrow.compute as pc

    span = pc.min_max(rows[EVENT_TIMESTAMP]).as_py()
    return Interval(start=span["min"], end=span["max"] + timedelta(microseconds=1))
