"""Training-set retrieval: entity rows in, one point-in-time-correct feature column per request out.

Each requested view adds one ``as_of_join`` step over its offline table, read at a pinned table
version. The versions, the feature references and the registry version form a
``TrainingManifest``: passing its ``table_versions`` back rebuilds the same training set (on
Delta, whose tables keep history).

Two engines answer, with identical results. Spark (``historical_features``) returns a lazy plan
and scales out. For pandas in / pandas out, small requests run in process instead
(``pandas_training_set``): the tables' rows of the entity rows' days are read with Arrow and
joined by ``local_as_of.as_of_join_arrow``, with no Spark job and no JVM. ``choose_engine`` picks
the local engine when the request suits it and those rows number at most
``retrieval.local_max_rows``. Either engine is handed only the pandas frame's join columns and
computes only the feature columns; both end in ``training_frame``, which puts the caller's own
frame back in front of them, untouched. So the entity columns keep their dtypes, the feature
dtypes do not depend on the engine, and rows keep their input order and index.

Entity rows are read and checked in ``entity_rows``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from granero.aggregation.engine import AggregationSpec, aggregate_as_of
from granero.definitions.refs import ViewFeatures
from granero.errors import RetrievalError
from granero.offline.aggregate_join import aggregate_join, event_columns, requested_spec
from granero.offline.as_of_join import AsOfSpec, as_of_join, visible_rows
from granero.offline.entity_rows import (
    check_entities,
    check_entity_columns,
    entity_table,
    entity_types,
    join_columns,
    key_type_error,
    load_entities,
)
from granero.offline.local_as_of import as_of_join_arrow, micros
from granero.offline.pandas_frames import is_pandas, pandas_frame, training_frame
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_DATE, EVENT_TIMESTAMP, utc_date, utc_day
from granero.offline.spark_errors import spark_errors
from granero.offline.tables import OfflineStore, read_view_arrow, read_view_table
from granero.registry import RegistryVersion

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True)
class TrainingManifest:
    """What a training set was built from; enough to rebuild it."""

    features: list[str]
    """``view:feature`` references, in output column order."""
    columns: list[str]
    feature_service: str | None
    registry_version: int
    registry_hash: str
    offline_store: str
    table_versions: dict[str, int | None]
    """Per view, the table version read (None on backends without versions)."""
    full_feature_names: bool
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    on_demand: dict[str, str] = field(default_factory=dict)
    """Per on-demand view computed, the source hash of its transform (``code.source_hash``)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: str | Path) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> TrainingManifest:
        return cls(**json.loads(Path(path).read_text()))


def output_columns(requested: list[ViewFeatures], full_feature_names: bool) -> list[str]:
    """Output feature columns in order; bare names must not collide."""
    return distinct_columns([c for vf in requested for c in vf.column_names(full_feature_names)])


def distinct_columns(columns: list[str]) -> list[str]:
    """``columns``, refused when a bare feature name appears twice (RetrievalError)."""
    clashes = sorted({c for c in columns if columns.count(c) > 1})
    if clashes:
        raise RetrievalError(
            f"feature names {clashes} appear in several views; "
            "use full feature names (view__feature) instead of plain names"
        )
    return columns


def build_manifest(
    registry: RegistryVersion,
    requested: list[ViewFeatures],
    store: OfflineStore,
    *,
    feature_service: str | None = None,
    full_feature_names: bool = True,
    table_versions: dict[str, int] | None = None,
) -> TrainingManifest:
    """Pin each view's table version now (the given ones, else the current ones)."""
    pinned: dict[str, int | None] = {}
    for vf in requested:
        name = vf.view.name
        if not store.exists(name):
            raise RetrievalError(
                f"feature view {name!r} has no offline table yet: run `granero materialize` first"
            )
        pinned[name] = (table_versions or {}).get(name, store.current_version(name))
    return TrainingManifest(
        features=[f"{vf.view.name}:{f}" for vf in requested for f in vf.features],
        columns=output_columns(requested, full_feature_names),
        feature_service=feature_service,
        registry_version=registry.version,
        registry_hash=registry.hash,
        offline_store=store.kind,
        table_versions=pinned,
        full_feature_names=full_feature_names,
    )


def historical_features(
    spark: SparkSession,
    store: OfflineStore,
    registry: RegistryVersion,
    entities: Any,
    requested: list[ViewFeatures],
    manifest: TrainingManifest,
) -> DataFrame:
    """Entity rows plus one point-in-time-correct column per requested feature (a lazy plan).

    Tables are read at ``manifest.table_versions`` and pruned to the entity rows' time range by
    a scalar subquery the scan evaluates itself (Delta and Parquet skip unrelated day partitions,
    with no round trip through the driver). When the entity rows are few, each table is also cut
    to the rows some entity row can see before the join's shuffle (``visible_rows``).
    """
    frame = load_entities(spark, entities, requested)
    check_entities(frame.columns, dict(frame.dtypes), requested, manifest.columns)
    with spark_errors(RetrievalError, "building the training set"):
        rows, few = frame, is_small(frame, entities)
        bounds = _time_bounds(rows.coalesce(1) if few else rows)
        for vf in requested:
            table = read_view_table(
                store, registry.definitions, vf.view, manifest.table_versions[vf.view.name]
            )
            table = _pruned(table, bounds, vf.view.ttl)
            frame = _join_view(frame, table, rows if few else None, registry, vf, manifest)
    return frame


def _join_view(
    frame: DataFrame,
    table: DataFrame,
    few_rows: DataFrame | None,
    registry: RegistryVersion,
    vf: ViewFeatures,
    manifest: TrainingManifest,
) -> DataFrame:
    """``frame`` plus one view's columns: its as-of join, or its windowed aggregates.

    ``few_rows``: the entity rows when they are few enough to cut the table to what they can see.
    """
    spec = view_spec(vf, manifest)
    aggregates = _aggregates(registry, vf, spec)
    if aggregates is None:
        return as_of_join(frame, visible_rows(table, few_rows, spec) if few_rows is not None else table, spec)
    # No visible_rows: the engine skips the events of keys no row asks for, and the summary join
    # cost more than it saved (100k rows x 1M events: ~5 of ~14 CPU-s, docs/aggregations.md).
    buckets = table.sparkSession.sparkContext.defaultParallelism  # a bucket per core: see aggregate_join
    return aggregate_join(frame, table.select(*event_columns(aggregates)), aggregates, buckets)


def view_spec(vf: ViewFeatures, manifest: TrainingManifest) -> AsOfSpec:
    """One view's part of the join, for either engine (for an aggregate view: its keys, the span
    of events a value reads as ttl, and the aggregates asked for as outputs)."""
    outputs = vf.column_names(manifest.full_feature_names)
    return AsOfSpec(vf.join_keys, vf.view.ttl, dict(zip(vf.features, outputs, strict=True)))


BROADCAST_BYTES = 64 * 2**20
"""Entity rows estimated below this size get ``visible_rows`` (their summary is broadcast)."""


def is_small(entities: DataFrame, given: Any = None) -> bool:
    """Whether the entity rows are small enough to broadcast a summary of them.

    A pandas frame ``given`` knows its size; else Spark's estimate: measured for cached rows,
    file sizes for files, unknown (so large) for rows made from Python data or after joins.
    """
    if hasattr(given, "memory_usage"):
        return int(given.memory_usage(index=False).sum()) <= BROADCAST_BYTES
    size = entities._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()
    return int(str(size)) <= BROADCAST_BYTES


def _time_bounds(entities: DataFrame) -> tuple[Column, Column]:
    """Earliest and latest entity time in microseconds, as scalar subqueries (no job here).

    Spark merges the two into one aggregate, run once when the table scans start; over one
    partition (few rows) it is a single-stage job.
    """
    from pyspark.sql import functions as F

    micros = F.unix_micros(F.col(f"`{EVENT_TIMESTAMP}`").cast("timestamp"))
    bounds = entities.agg(F.min(micros).alias("low"), F.max(micros).alias("high"))
    return bounds.select("low").scalar(), bounds.select("high").scalar()


def _pruned(table: DataFrame, bounds: tuple[Column, Column], ttl: timedelta) -> DataFrame:
    """Only the table rows some entity row could see: event time in [min ts - ttl, max ts].

    No entity rows: null bounds, no table rows.
    """
    from pyspark.sql import functions as F

    low, high = bounds[0] - ttl // timedelta(microseconds=1), bounds[1]
    days = (F.col(EVENT_DATE) >= utc_date(F.timestamp_micros(low))) & (
        F.col(EVENT_DATE) <= utc_date(F.timestamp_micros(high))
    )
    event = F.unix_micros(F.col(EVENT_TIMESTAMP))
    return table.where(days & (event >= low) & (event <= high))


class RetrievalConfig(BaseModel):
    """``retrieval:`` in feature_store.yaml: which engine answers pandas training retrievals."""

    model_config = ConfigDict(extra="forbid")

    local_max_rows: int = Field(default=5_000_000, ge=0)
    """Most table rows (of the entity rows' days, summed over the views) the in-process engine
    reads; a larger request goes to Spark. 0: always Spark. Memory grows with it: 3M rows of 20
    float64 features and 600k entity rows peaked at 2 GB of RSS (and took 2.1 s; Spark 8-20 s)."""

    local_threads: int | None = Field(default=None, ge=1)
    """Threads the in-process engine computes windowed aggregates on (keys split between them;
    same values on any count). Unset: one per core of the machine, at most 8."""

    def threads(self) -> int:
        return self.local_threads or min(os.cpu_count() or 1, 8)


Engine = Literal["auto", "local", "spark"]
ENGINE_ATTR = "granero_engine"
"""Key of the result's ``DataFrame.attrs`` naming the engine that built it."""
_INPUT_ROW = "__granero_input_row"
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class EngineChoice:
    """The engine that answers a pandas retrieval, and why."""

    engine: Literal["local", "spark"]
    reason: str


def pandas_training_set(
    spark: Callable[[], SparkSession],
    store: OfflineStore,
    registry: RegistryVersion,
    entities: Any,
    requested: list[ViewFeatures],
    manifest: TrainingManifest,
    config: RetrievalConfig,
    engine: Engine = "auto",
    extend: Callable[[pa.Table, Any], pa.Table] | None = None,
) -> pd.DataFrame:
    """The training set as pandas, built by the engine ``choose_engine`` picks (named in
    ``attrs[ENGINE_ATTR]``); ``spark`` is called only when Spark answers.

    A pandas frame's own columns come back untouched (``training_frame``): the engines only
    compute the feature columns, from its join columns. ``extend(table, entities)``, when given,
    turns either engine's Arrow result into the returned columns (on-demand features).
    """
    choice = choose_engine(engine, entities, store, requested, manifest, config)
    if choice.engine == "local":
        features = _local_features(store, registry, entities, requested, manifest, config.threads())
    else:
        features = _spark_training_table(spark(), store, registry, entities, requested, manifest)
    features = extend(features, entities) if extend else features
    frame = training_frame(entities, features) if is_pandas(entities) else pandas_frame(features)
    frame.attrs[ENGINE_ATTR] = choice.engine
    return frame


def choose_engine(
    engine: Engine,
    entities: Any,
    store: OfflineStore,
    requested: list[ViewFeatures],
    manifest: TrainingManifest,
    config: RetrievalConfig,
) -> EngineChoice:
    """``spark`` and ``local`` as asked (``local`` refused, with the reason, when it cannot run);
    ``auto``: local when it can run and reads at most ``config.local_max_rows`` rows."""
    if engine not in ("auto", "local", "spark"):
        raise RetrievalError(f"engine must be 'auto', 'local' or 'spark', not {engine!r}")
    if is_pandas(entities):  # the same messages as Spark's check, before either engine runs
        check_entity_columns([str(c) for c in entities.columns], requested, manifest.columns)
    if engine == "spark":
        return EngineChoice("spark", "asked for")
    refusal = local_refusal(entities, store, requested)
    if engine == "local":
        if refusal:
            raise RetrievalError(f"the local engine cannot answer this request: {refusal}")
        return EngineChoice("local", "asked for")
    if refusal:
        return EngineChoice("spark", refusal)
    limit = config.local_max_rows
    if limit == 0:
        return EngineChoice("spark", "retrieval.local_max_rows is 0")
    rows = rows_to_read(store, entities, requested, manifest)
    if rows > limit:
        return EngineChoice("spark", f"{rows} table rows to read > retrieval.local_max_rows {limit}")
    return EngineChoice("local", f"{rows} table rows to read <= retrieval.local_max_rows {limit}")


def local_refusal(entities: Any, store: OfflineStore, requested: list[ViewFeatures]) -> str | None:
    """Why the in-process engine cannot answer for these entity rows (None: it can)."""
    if not is_pandas(entities):
        return f"the entity rows are a {type(entities).__name__}, not a pandas DataFrame"
    if not store.local:
        return "the offline store is not on a local file system"
    types = entity_types(entities[list(join_columns(requested))])
    if isinstance(types, str):
        return types
    if types[EVENT_TIMESTAMP] not in ("timestamp", "void"):
        return f"{EVENT_TIMESTAMP} is not a pandas datetime64 column"
    return key_type_error(types, requested)


def rows_to_read(
    store: OfflineStore, entities: pd.DataFrame, requested: list[ViewFeatures], manifest: TrainingManifest
) -> int:
    """Table rows of the days the entity rows can see, summed over the views (metadata only)."""
    times = entity_table(entities[[EVENT_TIMESTAMP]], join_columns(requested))[EVENT_TIMESTAMP]
    total = 0
    for vf in requested:
        days = day_range(times, vf.view.ttl)
        if days is not None:
            total += store.count_rows(vf.view.name, manifest.table_versions[vf.view.name], *days)
    return total


def day_range(times: pa.ChunkedArray, ttl: timedelta) -> tuple[date, date] | None:
    """The UTC days [day of min ts - ttl, day of max ts], which hold every row an entity row can
    see; None when no entity row has a time."""
    values, valid = micros(times)
    if not valid.any():
        return None
    return utc_day(int(values[valid].min()) - ttl // _MICROSECOND), utc_day(int(values[valid].max()))


def _local_features(
    store: OfflineStore,
    registry: RegistryVersion,
    entities: pd.DataFrame,
    requested: list[ViewFeatures],
    manifest: TrainingManifest,
    threads: int = 1,
) -> pa.Table:
    """The in-process engine: each view's rows of the entity rows' days, joined with Arrow; the
    feature columns, one row per entity row in input order (aggregates on ``threads`` threads).

    The entity rows were checked by ``check_entity_columns`` and ``local_refusal`` already.
    """
    import pyarrow as pa

    join = join_columns(requested)
    frame = entity_table(entities[list(join)], join)
    for vf in requested:
        try:
            frame = _local_join(frame, store, registry, vf, manifest, threads)
        except pa.ArrowInvalid as error:  # e.g. an entity key out of its dtype's range
            raise RetrievalError(f"joining feature view {vf.view.name!r}: {error}") from error
    return frame.select(manifest.columns)


def _local_join(
    frame: pa.Table,
    store: OfflineStore,
    registry: RegistryVersion,
    vf: ViewFeatures,
    manifest: TrainingManifest,
    threads: int = 1,
) -> pa.Table:
    """``frame`` plus one view's columns, in process: its as-of join or its windowed aggregates,
    from the table rows of the days the entity rows can see."""
    spec = view_spec(vf, manifest)
    aggregates = _aggregates(registry, vf, spec)
    stored = [*vf.join_keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *vf.features]
    columns = event_columns(aggregates) if aggregates else stored
    days = day_range(frame[EVENT_TIMESTAMP], vf.view.ttl)
    version = manifest.table_versions[vf.view.name]
    table = read_view_arrow(store, registry.definitions, vf.view, version, columns, days)
    if aggregates:
        return aggregate_as_of(frame, table, aggregates, threads)
    return as_of_join_arrow(frame, table, spec)


def _aggregates(registry: RegistryVersion, vf: ViewFeatures, spec: AsOfSpec) -> AggregationSpec | None:
    """What an aggregate view is asked for (None for a plain view)."""
    if not vf.view.is_aggregate:
        return None
    return requested_spec(registry.definitions, vf, list(spec.outputs.values()))


def _spark_training_table(
    spark: SparkSession,
    store: OfflineStore,
    registry: RegistryVersion,
    entities: Any,
    requested: list[ViewFeatures],
    manifest: TrainingManifest,
) -> pa.Table:
    """The Spark engine, collected as Arrow: the whole training set for Spark or file entity
    rows; for a pandas frame, only its feature columns, in the frame's row order."""
    import numpy as np
    from pyspark.sql import functions as F

    if not is_pandas(entities):
        return _to_arrow(historical_features(spark, store, registry, entities, requested, manifest))
    join = list(join_columns(requested))
    numbered = entities[join].assign(**{_INPUT_ROW: np.arange(len(entities))})
    # Converted once and cached: the plan reads the entity rows three times (time bounds, the
    # visible-rows summary, the join), and a frame made from pandas would be converted each time
    # (600k rows: 21 s uncached, 10 s cached). Counting it also gives Spark its real size.
    rows = load_entities(spark, numbered, requested).cache()
    try:
        with spark_errors(RetrievalError, "converting the pandas entity rows to Spark"):
            rows.count()
        frame = historical_features(spark, store, registry, rows, requested, manifest)
        frame = frame.select(*[F.col(f"`{c}`") for c in (_INPUT_ROW, *manifest.columns)])
        return _to_arrow(frame).sort_by(_INPUT_ROW).drop_columns([_INPUT_ROW])
    finally:
        rows.unpersist()


def _to_arrow(frame: DataFrame) -> pa.Table:
    with spark_errors(RetrievalError, "building the training set"):
        return frame.toArrow()


def latest_rows(table: DataFrame, keys: list[str]) -> DataFrame:
    """Per entity key, the table row with the greatest (event_timestamp, created_timestamp).

    Spark orders a null struct field below any value, so a null created_timestamp loses ties,
    as the shared rule says. The table holds no full ties, so the choice is deterministic.
    """
    from pyspark.sql import functions as F

    others = [c for c in table.columns if c not in keys]
    ordered = [
        EVENT_TIMESTAMP,
        CREATED_TIMESTAMP,
        *[c for c in others if c not in (EVENT_TIMESTAMP, CREATED_TIMESTAMP)],
    ]
    latest = table.groupBy(*[F.col(f"`{k}`") for k in keys]).agg(
        F.max(F.struct(*[F.col(f"`{c}`") for c in ordered])).alias("__granero_latest")
    )
    return latest.select(
        *[F.col(f"`{k}`") for k in keys], *[F.col("__granero_latest")[c].alias(c) for c in others]
    )


def write_training_set(frame: DataFrame, path: str, fmt: str, overwrite: bool) -> None:
    """Write a training set as Parquet or CSV (with a header); replaces only if ``overwrite``."""
    if fmt not in ("parquet", "csv"):
        raise RetrievalError(f"training set format must be parquet or csv, not {fmt!r}")
    writer = frame.write.mode("overwrite" if overwrite else "errorifexists").format(fmt)
    if fmt == "csv":
        writer = writer.option("header", "true")
    with spark_errors(RetrievalError, f"writing the training set to {path}"):
        writer.save(path)
