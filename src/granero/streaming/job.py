"""``granero stream``: Structured Streaming queries per view, writing through the batch paths.

A plain view served online gets one query (checkpoint ``<checkpoint_location>/<view>.online``,
``foreachBatch`` an ``OnlineBatchWriter``, trigger ``trigger_interval``): online, landing, dead
letters. Its rows reach the offline table from the landing (``offline.landed_append``, an
``AppendLoop`` every ``offline_trigger_interval``, and once more when the queries stop): the
messages are parsed once, and no Spark job stands between two online batches but their own.
Any other view gets a durable query (checkpoint ``<checkpoint_location>/<view>``, a
``MicroBatchWriter``: dead letters, landing, offline append exactly once): an aggregate view
served online on the short trigger, since its online values are recomputed from the offline
events it appends; a view not served online on the long one, in the fair scheduler's
``granero_durable`` pool, after the ``granero_online`` one (``streaming/fair_scheduler.xml``).
``QueryKind`` runs one kind only, for a process of its own.

Everything a query would refuse late is refused before any starts: a view without a stream
source, a schema Spark cannot read, a column the view needs and the messages lack, a type that
cannot become its declared dtype, a filter or transformation that does not analyse.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from granero.definitions import FeatureView, KafkaSource, RepoDefinitions
from granero.errors import ConfigError, MaterializationError, NotFound
from granero.offline.landed_append import LandedAppender
from granero.offline.landing import landing_location
from granero.offline.materialize import check_expressions, column_label, input_types, source_inputs
from granero.offline.schema import table_dtypes
from granero.offline.spark_casts import refusals
from granero.offline.spark_errors import spark_errors
from granero.streaming.append_loop import AppendLoop, interval_seconds
from granero.streaming.config import QueryKind
from granero.streaming.micro_batch import MicroBatchWriter, OnlineBatchWriter, StreamTargets
from granero.streaming.parse import describe, parsed, stream_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from granero.feature_store import FeatureStore
    from granero.streaming.config import StreamingConfig


DURABLE_READ_OPTIONS = {"minPartitions": "8"}
"""The durable query's batch (tens of seconds of messages) read in at least 8 tasks, not one per
Kafka partition: the fair scheduler can start the online query's tasks only when a task ends.
Measured only together with the pools' weights (10k events/s, one process, bench.freshness: p99
12.2 s with equal pools and a task per Kafka partition, 3.9 s with both); 16 tasks with equal
pools was no better (p99 12.0 s)."""


def streamed_views(defs: RepoDefinitions, names: list[str] | None) -> list[FeatureView]:
    """The named views (default: every view with a stream source), each checked to have one."""
    if names is None:
        return [v for v in defs.feature_views.values() if v.stream_source is not None]
    unknown = [n for n in names if n not in defs.feature_views]
    if unknown:
        raise NotFound(f"no feature view named {', '.join(map(repr, unknown))}; known: {sorted(defs.feature_views)}")
    without = [n for n in names if defs.feature_views[n].stream_source is None]
    if without:
        raise ConfigError(f"feature views {without} have no stream_source: declare one to stream them")
    return [defs.feature_views[n] for n in names]


def as_streamed(view: FeatureView) -> FeatureView:
    """The view as its stream reads it: the stream source's timestamp fields name the columns."""
    if view.write_transform is not None:
        raise ConfigError(f"feature view {view.name!r}: a view with a write_transform cannot stream yet")
    return view.model_copy(update={"source": view.stream_source})


def check_streamable(spark: SparkSession, defs: RepoDefinitions, view: FeatureView) -> None:
    """Refuse a stream whose rows could never become the view's table rows (no job runs)."""
    source = view.source
    context = f"feature view {view.name!r}: {describe(source)}"
    with spark_errors(ConfigError, context):
        rows = _empty_rows(spark, view)
        check_expressions(rows, view)
        types = input_types(rows, source_inputs(defs, view))
    dtypes = dict(table_dtypes(defs, view))
    labels = {n: column_label(view, n) for n in types}
    lines = refusals({labels[n]: t for n, t in types.items()}, {labels[n]: dtypes[n] for n in types})
    if lines:
        raise ConfigError(f"{context} cannot be streamed: " + "; ".join(lines))


def _empty_rows(spark: SparkSession, view: FeatureView) -> DataFrame:
    """No rows, with the columns a micro-batch of the view's source has once parsed."""
    if isinstance(view.source, KafkaSource):
        records = spark.createDataFrame([], "value BINARY, topic STRING, partition INT, offset BIGINT")
        return parsed(records, view.source)
    return stream_frame(spark, view.model_copy(update={"stream_source": view.source}), {}).limit(0)


def has_online_query(view: FeatureView, targets: StreamTargets) -> bool:
    """Whether the view's rows come from an online query and the landing (plain views served online)."""
    return targets.online is not None and view.online and not view.is_aggregate


def start_query(
    spark: SparkSession, view: FeatureView, writer: MicroBatchWriter, config: StreamingConfig,
    available_now: bool,
) -> StreamingQuery:
    """Start one view's durable query; ``available_now`` processes what is there, then stops."""
    if view.online and writer.targets.online is not None:  # an aggregate view: its online path
        frame, spec = source_frame(spark, view, config), QuerySpec(view, view.name, config.trigger_interval,
                                                                    "granero_online")
    else:
        frame = source_frame(spark, view, config, DURABLE_READ_OPTIONS)
        spec = QuerySpec(view, view.name, config.offline_trigger_interval, "granero_durable")
    query = _start(frame, writer, config, available_now, spec)
    writer.identity.started(query.id)
    return query


def start_online_query(
    spark: SparkSession, view: FeatureView, writer: OnlineBatchWriter, config: StreamingConfig,
    available_now: bool,
) -> StreamingQuery:
    """Start one view's online query (its own checkpoint: it may run ahead of the durable one);
    its row-by-row steps are part of the query's plan, built once (``OnlineBatchWriter.rows``)."""
    frame = writer.rows(source_frame(spark, view, config))
    spec = QuerySpec(view, f"{view.name}.online", config.trigger_interval, "granero_online")
    query = _start(frame, writer, config, available_now, spec)
    writer.identity.started(query.id)
    return query


def source_frame(
    spark: SparkSession, view: FeatureView, config: StreamingConfig, kafka_options: dict[str, str] | None = None,
) -> DataFrame:
    """The view's stream source as a streaming DataFrame, read at most ``max_offsets_per_trigger``
    messages per micro-batch (and with ``kafka_options`` from a Kafka source)."""
    options: dict[str, str] = {}
    if isinstance(view.source, KafkaSource):
        options |= kafka_options or {}
        if config.max_offsets_per_trigger:
            options["maxOffsetsPerTrigger"] = str(config.max_offsets_per_trigger)
    return stream_frame(spark, view.model_copy(update={"stream_source": view.source}), options)


@dataclass(frozen=True)
class QuerySpec:
    """One query of a view: its name (and checkpoint folder), trigger and scheduler pool."""

    view: FeatureView
    name: str
    trigger_interval: str
    pool: str
    """A pool of ``streaming/fair_scheduler.xml``."""


def _start(
    frame: DataFrame, writer: object, config: StreamingConfig, available_now: bool, spec: QuerySpec,
) -> StreamingQuery:
    stream = (frame.writeStream.queryName(f"granero_{spec.name}").foreachBatch(writer)
              .option("checkpointLocation", f"{config.checkpoint_location.rstrip('/')}/{spec.name}"))
    trigger = {"availableNow": True} if available_now else {"processingTime": spec.trigger_interval}
    frame.sparkSession.sparkContext.setLocalProperty("spark.scheduler.pool", spec.pool)  # the query inherits it
    with spark_errors(MaterializationError, f"starting the stream of feature view {spec.view.name!r}"):
        return stream.trigger(**trigger).start()


@dataclass
class StreamWriters:
    """What ``start_streams`` built, per view: durable writers, online writers, appenders."""

    durable: dict[str, MicroBatchWriter]
    online: dict[str, OnlineBatchWriter]
    appenders: dict[str, LandedAppender]

    def totals(self) -> dict[str, dict[str, int]]:
        """Per view: the offline rows written (``batches``, ``rows``), dead letters, and the
        online query's ``online_batches`` and ``online_rows`` (a replayed batch counts again)."""
        nothing = {"batches": 0, "rows": 0, "dead_letters": 0}
        totals = {}
        for name in dict.fromkeys([*self.online, *self.durable, *self.appenders]):
            writer = self.durable.get(name) or self.appenders.get(name)
            written = nothing if writer is None else writer.totals
            online = self.online.get(name)
            seen = nothing if online is None else online.totals
            dead = written.get("dead_letters", 0) + seen["dead_letters"]
            totals[name] = {"batches": written["batches"], "rows": written["rows"], "dead_letters": dead,
                            "online_batches": seen["batches"], "online_rows": seen["rows"]}
        return totals


def run_streams(
    store: FeatureStore, names: list[str] | None, available_now: bool = False, kind: QueryKind = QueryKind.ALL,
) -> dict[str, dict[str, int]]:
    """Run the views' queries (and landed appends) of ``kind`` until they stop (``available_now``:
    once what is there is written), SIGTERM stops them gracefully, or one fails; per view, what
    was written."""
    import signal

    from pyspark.sql import SparkSession

    writers = StreamWriters({}, {}, {})
    queries = start_streams(store, names, available_now, writers, kind)
    stopping = threading.Event()

    def stop() -> None:
        stopping.set()
        stop_in_background(queries)

    every = interval_seconds(store.config.streaming.offline_trigger_interval)
    loop = AppendLoop(list(writers.appenders.values()), every, on_failure=stop)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop())
    try:
        loop.start()
        await_streams(SparkSession.getActiveSession(), queries, None if available_now else stopping)
    finally:
        loop.stop()
        signal.signal(signal.SIGTERM, previous)
    if loop.failure is not None:
        raise MaterializationError(f"appending landed rows to the offline table failed: {loop.failure}") \
            from loop.failure
    loop.append_all()  # every query stopped: what they landed last
    return writers.totals()


def start_streams(
    store: FeatureStore, names: list[str] | None, available_now: bool = False,
    writers: StreamWriters | None = None, kind: QueryKind = QueryKind.ALL,
) -> list[StreamingQuery]:
    """Check every view to stream, then start its queries of ``kind`` (the session gets the Kafka
    jars); ``writers`` receives each view's writers, and the appenders of a durable ``kind``.
    Every view with an online query starts appending at its landing log's length before any
    query starts, so whichever process starts first, no row its online query lands is skipped."""
    from granero.offline.spark_session import get_job_spark

    defs = store.registered()
    store.access.require_views(defs, "materialize", [v.name for v in streamed_views(defs, names)])
    views = [as_streamed(v) for v in streamed_views(defs, names)]
    spark = get_job_spark(store.config.spark, streaming=True)
    for view in views:
        check_streamable(spark, defs, view)
    writers = StreamWriters({}, {}, {}) if writers is None else writers
    for view in views:
        targets = _targets(store, defs, view)
        if has_online_query(view, targets):
            writers.online[view.name] = OnlineBatchWriter(view, defs, targets)
            appender = LandedAppender(view, defs, store.offline_store, targets.landing)
            appender.start()
            if kind != QueryKind.ONLINE:
                writers.appenders[view.name] = appender
        elif kind != QueryKind.ONLINE:
            writers.durable[view.name] = MicroBatchWriter(view, defs, targets)
    config = store.config.streaming
    online = [] if kind == QueryKind.DURABLE else list(writers.online.values())
    fast = [start_online_query(spark, writer.view, writer, config, available_now) for writer in online]
    if kind == QueryKind.ONLINE and not fast:
        raise ConfigError("--queries online: none of the views has an online query (a plain view served "
                          "online); aggregate views' online values come from their durable queries")
    durable = writers.durable.values()
    return fast + [start_query(spark, writer.view, writer, config, available_now) for writer in durable]


def _targets(store: FeatureStore, defs: RepoDefinitions, view: FeatureView) -> StreamTargets:
    aggregates = None
    if view.is_aggregate:
        registered = defs.feature_views[view.name]
        aggregates = lambda interval: store._sync_views(defs, [registered], interval)  # noqa: E731
    return StreamTargets(
        offline=store.offline_store,
        online=store.online_store,
        landing=landing_location(store.config.offline_store.path),
        dead_letters=store.config.streaming.dead_letter_location.rstrip("/"),
        sync_aggregates=aggregates,
    )


SIGNAL_POLL_SECONDS = 1.0
"""How often the main thread comes back from the JVM while the queries run. The kernel may hand
SIGTERM to any thread, Python runs the handler only in the main thread, and a main thread blocked
in a JVM call without a timeout (py4j's socket read) would not notice it until a query ended
(``serving.server.SIGNAL_POLL_SECONDS``, the same reason, with a test)."""


def await_streams(spark: SparkSession, queries: list[StreamingQuery], stopping: threading.Event | None) -> None:
    """Wait until every query stopped (``availableNow``, or ``stop_streams``) and, given
    ``stopping``, until it is set (a job of appenders alone runs until stopped); the first
    failure stops the others and raises."""
    try:
        while _running(queries, stopping):
            if not queries:
                stopping.wait(SIGNAL_POLL_SECONDS)
            elif spark.streams.awaitAnyTermination(SIGNAL_POLL_SECONDS):
                spark.streams.resetTerminated()
    except Exception as error:  # a query's failure surfaces as a pyspark StreamingQueryException
        raise MaterializationError(f"a stream query failed: {_first_line(error)}") from None
    finally:
        stop_streams(queries)


def _running(queries: list[StreamingQuery], stopping: threading.Event | None) -> bool:
    return any(query.isActive for query in queries) or (stopping is not None and not stopping.is_set())


def stop_in_background(queries: list[StreamingQuery]) -> None:
    """``stop_streams`` from a thread of its own: a signal handler runs inside whatever JVM call
    the main thread is waiting in (``awaitAnyTermination``), and a JVM call from there is a
    reentrant call on the same connection, which py4j refuses (the stop then failed and the
    job exited with an error instead of stopping)."""
    import threading

    threading.Thread(target=stop_streams, args=(queries,), name="granero-stream-stop", daemon=True).start()


def stop_streams(queries: list[StreamingQuery]) -> None:
    """Stop every query still running (a batch in flight is replayed by the next start)."""
    for query in queries:
        if query.isActive:
            query.stop()


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
