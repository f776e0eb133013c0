"""Sync: copy each entity's latest offline row into the online store, from the Spark executors.

The driver only plans. Every task reads its partition as Arrow batches, encodes keys and values
column-wise (granero.online.encoding) and writes them write-if-newer in pipelines of
``batch_size`` keys; only one count per task returns to the driver. Re-running is harmless: an
equal version overwrites with the same bytes, an older row never lands, a retried task just
writes again, and input holding several rows per entity still ends with the newest one stored.

A batch that stored rows raises the view's latest online event time (granero.freshness).

Executors import only pyarrow, numpy, redis, granero.online.{encoding,redis} and
granero.freshness.online_writes; pyspark is imported on the driver, inside sync_view.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from granero.errors import MaterializationError, OnlineStoreUnavailable
from granero.freshness.online_writes import record_online_write
from granero.online.encoding import encode_entity_keys, expire_at_ms, micros_column, value_codec
from granero.online.redis import RedisSettings, RedisStore

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from granero.definitions import FeatureView


def sync_view(
    df_latest: DataFrame,
    connection_info: RedisSettings,
    project: str,
    view: FeatureView,
    join_keys: dict[str, str],
    *,
    batch_size: int = 2000,
) -> int:
    """Write ``df_latest`` (offline-table columns) to the online store; returns rows stored.

    Rows with a null join key cannot be looked up and are skipped.
    """
    from pyspark.sql import functions as F

    writer = PartitionWriter(
        connection_info,
        project,
        view.name,
        tuple(join_keys.values()),
        tuple((f.name, f.dtype) for f in view.features),
        view.ttl,
        batch_size,
    )
    if "created_timestamp" not in df_latest.columns:
        df_latest = df_latest.withColumn("created_timestamp", F.lit(None).cast("timestamp"))
    try:
        rows = df_latest.select(
            *join_keys, "event_timestamp", "created_timestamp", *view.feature_names
        )
        counts = rows.dropna(subset=list(join_keys)).mapInArrow(writer, "written long")
        total = sum(row[0] for row in counts.collect())  # one row per task: no extra shuffle
    except Exception as error:  # a failed Spark job surfaces as a py4j/pyspark error
        raise sync_error(view.name, error) from None
    return int(total)


@dataclass(frozen=True)
class PartitionWriter:
    """The executor side of a sync, pickled to each task: plain data plus ``__call__``."""

    settings: RedisSettings
    project: str
    view: str
    key_dtypes: tuple[str, ...]
    features: tuple[tuple[str, str], ...]
    ttl: timedelta
    batch_size: int = 2000

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        store = RedisStore(self.settings, self.project, batch_size=self.batch_size)
        written = 0
        try:
            for batch in batches:
                written += self.write(store, batch)
        finally:
            store.close()
        yield pa.RecordBatch.from_pydict(
            {"written": [written]}, pa.schema([("written", pa.int64())])
        )

    def write(self, store: RedisStore, batch: pa.RecordBatch) -> int:
        """Encode one Arrow batch (keys, event, created, features) and write it; rows stored."""
        if batch.num_rows == 0:
            return 0
        n_keys = len(self.key_dtypes)
        columns = batch.columns
        keys = encode_entity_keys(self.key_dtypes, columns[:n_keys])
        event, created = columns[n_keys], columns[n_keys + 1]
        values = value_codec(self.features).encode_columns(event, created, columns[n_keys + 2 :])
        micros = micros_column(event)
        written = store.write_batch(self.view, keys, values, expire_at_ms(micros, self.ttl).tolist())
        if written:  # the batch's newest row expires last: live if any is, so Redis holds it or newer
            record_online_write(store, self.view, int(micros.max()))
        return written


def write_rows(
    store: RedisStore,
    view: FeatureView,
    join_keys: dict[str, str],
    rows: Sequence[Mapping[str, Any]],
) -> int:
    """Write Python rows (join keys, event_timestamp, optional created_timestamp, features) the
    way a sync does: for small writes, fixtures and tests. Returns rows stored."""
    import pyarrow as pa

    from granero.types import arrow_type

    columns = {
        **join_keys,
        "event_timestamp": "timestamp",
        "created_timestamp": "timestamp",
        **{f.name: f.dtype for f in view.features},
    }
    table = pa.table(
        {
            name: pa.array([row.get(name) for row in rows], arrow_type(dtype))
            for name, dtype in columns.items()
        }
    )
    return write_table(store, view, join_keys, table)


def write_table(
    store: RedisStore, view: FeatureView, join_keys: dict[str, str], table: pa.Table
) -> int:
    """Write an Arrow table (join keys, event_timestamp, created_timestamp, features) in
    process, exactly as the executors write their batches; rows stored. What a sync of a small
    local table does instead of starting Spark."""
    writer = PartitionWriter(
        store.settings,
        store.project,
        view.name,
        tuple(join_keys.values()),
        tuple((f.name, f.dtype) for f in view.features),
        view.ttl,
    )
    columns = [*join_keys, "event_timestamp", "created_timestamp", *view.feature_names]
    return sum(writer.write(store, batch) for batch in table.select(columns).to_batches())


def sync_error(view: str, error: Exception) -> Exception:
    """The most telling line of a failed Spark job, as a Granero error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    unavailable = [line for line in lines if "OnlineStoreUnavailable" in line]
    if unavailable:
        return OnlineStoreUnavailable(f"syncing view {view!r}: {unavailable[-1]}")
    detail: Any = next(
        (line for line in reversed(lines) if "Error" in line), lines[-1] if lines else error
    )
    return MaterializationError(f"syncing view {view!r} to the online store failed: {detail}")
