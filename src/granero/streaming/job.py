"""``granero stream``: Structured Streaming queries per view, writing through the batch paths.

Each view with a ``stream_source`` gets a durable query (checkpoint ``<checkpoint_location>/<view>``,
``foreachBatch`` a ``MicroBatchWriter``: dead letters, landing, offline append exactly once;
trigger ``offline_trigger_interval``). A plain view served online also gets an online query
(checkpoint ``<checkpoint_location>/<view>.online``, ``OnlineBatchWriter``, trigger
``trigger_interval``) reading the same source on its own, so the online write never waits for a
Delta commit. An aggregate view has only the durable query, on the short trigger: its online
values are recomputed from the offline events it appends. Online queries run in the fair
scheduler's ``granero_online`` pool, before the ``granero_durable`` one
(``streaming/fair_scheduler.xml``); ``QueryKind`` runs one kind only, for a process of its own.

Everything a query would refuse late is refused before any starts: a view without a stream
source, a schema Spark cannot read, a column the view needs and the messages lack, a type that
cannot become its declared dtype, a filter or transformation that does not analyse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from granero.definitions import FeatureView, KafkaSource, RepoDefinitions
from granero.errors import ConfigError, MaterializationError, NotFound
from granero.offline.landing import landing_location
from granero.offline.materialize import check_expressions, column_label, input_types, source_inputs
from granero.offline.schema import table_dtypes
from granero.offline.spark_casts import refusals
from granero.offline.spark_errors import spark_errors
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
    """Whether the view's online rows come from a query of their own (plain views served online)."""
    return targets.online is not None and view.online and not view.is_aggregate


def start_query(
    spark: SparkSession, view: FeatureView, writer: MicroBatchWriter, config: StreamingConfig,
    available_now: bool,
) -> StreamingQuery:
    """Start one view's durable query; ``available_now`` processes what is there, then stops."""
    if writer.targets.write_online:  # no online query of its own (aggregate views): it is the online path
        frame, spec = source_frame(spark, view, config), QuerySpec(view, view.name, config.trigger_interval,
                                                                    "granero_online")
    else:
        frame = source_frame(spark, view, config, DURABLE_READ_OPTIONS)
        spec = QuerySpec(view, view.name, config.offline_trigger_interval, "granero_durable")
    query = _start(frame, writer, config, available_now, spec)
    writer.started(query.id)
    return query


def start_online_query(
    spark: SparkSession, view: FeatureView, writer: OnlineBatchWriter, config: StreamingConfig,
    available_now: bool,
) -> StreamingQuery:
    """Start one view's online query (its own checkpoint: it may run ahead of the durable one);
    its row-by-row steps are part of the query's plan, built once (``OnlineBatchWriter.rows``)."""
    frame = writer.rows(source_frame(spark, view, config))
    spec = QuerySpec(view, f"{view.name}.online", config.trigger_interval, "granero_online")
    return _start(frame, writer, config, available_now, spec)


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


def run_streams(
    store: FeatureStore, names: list[str] | None, available_now: bool = False, kind: QueryKind = QueryKind.ALL,
) -> dict[str, dict[str, int]]:
    """Run the views' queries of ``kind`` until they stop (``available_now``: once what is there is
    written), SIGTERM stops them gracefully, or one fails; per view, what was written."""
    import signal

    from pyspark.sql import SparkSession

    writers: dict[str, MicroBatchWriter] = {}
    online: dict[str, OnlineBatchWriter] = {}
    queries = start_streams(store, names, available_now, writers, online, kind)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop_in_background(queries))
    try:
        await_streams(SparkSession.getActiveSession(), queries)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return {name: stream_totals(writer, online.get(name)) for name, writer in writers.items()}


def stream_totals(writer: MicroBatchWriter, online: OnlineBatchWriter | None) -> dict[str, int]:
    """The durable query's batches, rows and dead letters; the online query's as ``online_*``."""
    totals = online.totals if online is not None else {"batches": 0, "rows": 0}
    return {**writer.totals, **{f"online_{name}": count for name, count in totals.items()}}


def start_streams(
    store: FeatureStore, names: list[str] | None, available_now: bool = False,
    writers: dict[str, MicroBatchWriter] | None = None, online: dict[str, OnlineBatchWriter] | None = None,
    kind: QueryKind = QueryKind.ALL,
) -> list[StreamingQuery]:
    """Check every view to stream, then start its queries of ``kind`` (the session gets the Kafka
    jars); ``writers`` and ``online`` receive each view's durable and online writers."""
    from granero.offline.spark_session import get_job_spark

    defs = store.registered()
    store.access.require_views(defs, "materialize", [v.name for v in streamed_views(defs, names)])
    views = [as_streamed(v) for v in streamed_views(defs, names)]
    spark = get_job_spark(store.config.spark, streaming=True)
    for view in views:
        check_streamable(spark, defs, view)
    writers = {} if writers is None else writers
    online = {} if online is None else online
    writers |= {view.name: MicroBatchWriter(view, defs, _targets(store, defs, view)) for view in views}
    online |= {view.name: OnlineBatchWriter(view, defs, store.online_store) for view in views
               if not writers[view.name].targets.write_online}
    config = store.config.streaming
    fast = [start_online_query(spark, view, online[view.name], config, available_now)
            for view in views if view.name in online and kind != QueryKind.DURABLE]
    if kind == QueryKind.ONLINE:
        if not fast:
            raise ConfigError("--queries online: none of the views has an online query (a plain view served "
                              "online); aggregate views' online values come from their durable queries")
        return fast
    return fast + [start_query(spark, view, writers[view.name], config, available_now) for view in views]


def _targets(store: FeatureStore, defs: RepoDefinitions, view: FeatureView) -> StreamTargets:
    aggregates = None
    if view.is_aggregate:
        registered = defs.feature_views[view.name]
        aggregates = lambda interval: store._sync_views(defs, [registered], interval)  # noqa: E731
    targets = StreamTargets(
        offline=store.offline_store,
        online=store.online_store,
        landing=landing_location(store.config.offline_store.path),
        dead_letters=store.config.streaming.dead_letter_location.rstrip("/"),
        sync_aggregates=aggregates,
    )
    targets.write_online = not has_online_query(view, targets)
    return targets


SIGNAL_POLL_SECONDS = 1.0
"""How often the main thread comes back from the JVM while the queries run. The kernel may hand
SIGTERM to any thread, Python runs the handler only in the main thread, and a main thread blocked
in a JVM call without a timeout (py4j's socket read) would not notice it until a query ended
(``serving.server.SIGNAL_POLL_SECONDS``, the same reason, with a test)."""


def await_streams(spark: SparkSession, queries: list[StreamingQuery]) -> None:
    """Wait until every query stopped (``availableNow``, or ``stop_streams``); the first failure
    stops the others and raises."""
    try:
        while any(query.isActive for query in queries):
            if spark.streams.awaitAnyTermination(SIGNAL_POLL_SECONDS):
                spark.streams.resetTerminated()
    except Exception as error:  # a query's failure surfaces as a pyspark StreamingQueryException
        raise MaterializationError(f"a stream query failed: {_first_line(error)}") from None
    finally:
        stop_streams(queries)


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
