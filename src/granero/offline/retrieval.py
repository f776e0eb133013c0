"""Training-set retrieval: entity rows in, one point-in-time-correct feature column per request out.

Each requested view adds one ``as_of_join`` step over its offline table, read at a pinned table
version. The versions, the feature references and the registry version form a
``TrainingManifest``: passing its ``table_versions`` back rebuilds the same training set (on
Delta, whose tables keep history).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from granero.definitions.refs import ViewFeatures
from granero.errors import RetrievalError
from granero.offline.as_of_join import AsOfSpec, as_of_join, visible_rows
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_DATE, EVENT_TIMESTAMP, utc_date
from granero.offline.spark_errors import spark_errors
from granero.offline.tables import OfflineStore, read_view_table
from granero.registry import RegistryVersion

if TYPE_CHECKING:
    import pandas as pd
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
    columns = [c for vf in requested for c in vf.column_names(full_feature_names)]
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


def load_entities(spark: SparkSession, entities: Any) -> DataFrame:
    """A Spark DataFrame of entity rows from a DataFrame, a pandas DataFrame or a file path.

    Paths: a Delta table (a folder with ``_delta_log``), CSV (``.csv``, header row) or Parquet.
    Naive pandas timestamps are taken as UTC.
    """
    from pyspark.sql import DataFrame

    if isinstance(entities, DataFrame):
        return entities
    if isinstance(entities, str | Path):
        return _read_entity_file(spark, str(entities))
    if hasattr(entities, "columns") and hasattr(entities, "dtypes"):
        return _from_pandas(spark, entities)
    raise RetrievalError(
        f"entity rows must be a Spark or pandas DataFrame or a path, not {type(entities).__name__}"
    )


def _read_entity_file(spark: SparkSession, path: str) -> DataFrame:
    local = Path(path.removeprefix("file://"))
    if "://" not in path and not local.exists():
        raise RetrievalError(f"entity file {path} does not exist")
    with spark_errors(RetrievalError, f"reading entity rows from {path}"):
        if (local / "_delta_log").is_dir():
            return spark.read.format("delta").load(path)
        if path.rstrip("/").endswith(".csv"):
            return spark.read.option("header", "true").option("inferSchema", "true").csv(path)
        return spark.read.parquet(path)


def _from_pandas(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            series = frame[column]
            frame[column] = (
                series.dt.tz_localize("UTC")
                if series.dt.tz is None
                else series.dt.tz_convert("UTC")
            )
    with spark_errors(RetrievalError, "converting the pandas entity rows to Spark"):
        return spark.createDataFrame(frame)


def check_entities(entities: DataFrame, requested: list[ViewFeatures], outputs: list[str]) -> None:
    """The entity rows must carry event_timestamp and every join key, and no output column."""
    columns = entities.columns
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise RetrievalError(f"entity rows have duplicate columns {duplicated}")
    needed = [EVENT_TIMESTAMP, *dict.fromkeys(k for vf in requested for k in vf.join_keys)]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise RetrievalError(
            f"entity rows lack column(s) {missing} (needed by "
            f"{[vf.view.name for vf in requested]}); they have {columns}"
        )
    _check_key_types(entities, requested)
    clashing = sorted(set(outputs) & set(columns))
    if clashing:
        raise RetrievalError(
            f"entity rows already have column(s) {clashing}, which the features would "
            "produce; rename them or use full feature names"
        )


_KEY_FAMILIES = {
    "int32": ("tinyint", "smallint", "int", "bigint"),
    "int64": ("tinyint", "smallint", "int", "bigint"),
    "string": ("string",),
    "bool": ("boolean",),
    "bytes": ("binary",),
    "timestamp": ("timestamp", "timestamp_ntz", "date"),
}


def _check_key_types(entities: DataFrame, requested: list[ViewFeatures]) -> None:
    """A join key column must hold values of its dtype's family: a string column for an int64
    key is refused here, by name, instead of failing (or silently nulling) inside the join."""
    types = dict(entities.dtypes)
    keys = {k: d for vf in requested for k, d in vf.join_keys.items()}
    for key, dtype in keys.items():
        if types[key] not in _KEY_FAMILIES.get(dtype, (types[key],)):
            raise RetrievalError(
                f"entity column {key!r} is {types[key]}, but join key {key!r} is {dtype}; "
                "cast it before asking for features"
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
    frame = load_entities(spark, entities)
    check_entities(frame, requested, manifest.columns)
    with spark_errors(RetrievalError, "building the training set"):
        rows, few = frame, is_small(frame, entities)
        bounds = _time_bounds(rows.coalesce(1) if few else rows)
        for vf in requested:
            table = read_view_table(
                store, registry.definitions, vf.view, manifest.table_versions[vf.view.name]
            )
            spec = AsOfSpec(
                vf.join_keys,
                vf.view.ttl,
                dict(zip(vf.features, vf.column_names(manifest.full_feature_names), strict=True)),
            )
            table = _pruned(table, bounds, vf.view.ttl)
            frame = as_of_join(frame, visible_rows(table, rows, spec) if few else table, spec)
    return frame


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
