"""The offline store interface: one table per feature view, rewritten a window at a time.

Backends (``delta.py``, ``parquet.py``) implement the ``OfflineStore`` protocol and know nothing
about feature views: they move DataFrames shaped by ``offline.schema``. The guarantees every
backend gives, and the contract tests check:

- ``write_window`` replaces exactly the rows whose ``event_timestamp`` lies in [start, end) and
  leaves every other row alone, so re-running a window is idempotent;
- a write that fails leaves readers on the previous content;
- ``append`` adds rows once per (writer, sequence): a replayed stream micro-batch adds nothing;
- ``read`` returns the whole table (at ``version`` where the backend keeps versions);
- on a local file system, ``read_arrow`` returns the same rows of whole days in process (no
  Spark), and ``count_rows`` counts them from metadata alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

from granero.definitions import FeatureView, RepoDefinitions
from granero.errors import ConfigError, RetrievalError
from granero.offline.delta import DeltaConfig, DeltaStore
from granero.offline.parquet import ParquetConfig, ParquetStore
from granero.offline.schema import conform, conform_arrow, table_arrow_schema, table_schema
from granero.registry import Interval

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


@dataclass(frozen=True)
class WindowWrite:
    """What one window write did: rows now in the window, and the table version it created."""

    rows_written: int
    table_version: int | None


class OfflineStore(Protocol):
    """One table per feature view under a base path."""

    kind: str
    """The backend's config ``type`` (``delta``, ``parquet``), recorded in training manifests."""

    @property
    def local(self) -> bool:
        """Whether the tables are on this machine's file system (``read_arrow`` needs that)."""
        ...

    def exists(self, view_name: str) -> bool: ...

    def read(self, view_name: str, version: int | None = None) -> DataFrame: ...

    def current_version(self, view_name: str) -> int | None:
        """The latest table version, or None for a backend without versions."""
        ...

    def read_arrow(
        self, view_name: str, version: int | None, columns: list[str], first_day: date, last_day: date
    ) -> pa.Table:
        """The rows whose ``event_date`` is in [first_day, last_day], read in process.

        Of ``columns``, only those the table has (``conform_arrow`` adds the others).
        """
        ...

    def count_rows(self, view_name: str, version: int | None, first_day: date, last_day: date) -> int:
        """How many rows ``read_arrow`` would return for those days, from metadata alone."""
        ...

    def write_window(
        self, view_name: str, frame: DataFrame, interval: Interval, partition_columns: list[str]
    ) -> WindowWrite:
        """Replace the table's rows in [interval.start, interval.end) by ``frame``'s rows.

        ``frame`` has the table layout and only rows inside the window (materialization
        guarantees both); new columns are added to the table, older rows read them as null.
        """
        ...

    def append(self, view_name: str, rows: pa.Table, schema: StructType, writer_id: str, sequence: int,
               partition_columns: list[str]) -> None:
        """Add ``rows`` (table layout; ``schema``: their Spark types) exactly once per
        (``writer_id``, ``sequence``): the same pair again adds nothing, even after a crash
        mid-write. A streaming query calls it per micro-batch (writer: the query, sequence: its
        batch id), so a replay adds no copy."""
        ...


_BACKENDS = {DeltaConfig: DeltaStore, ParquetConfig: ParquetStore}


def build_offline_store(
    config: DeltaConfig | ParquetConfig, spark: SparkSession | Callable[[], SparkSession]
) -> OfflineStore:
    """The backend for an ``offline_store:`` config, built once and passed around.

    ``spark`` may be a function returning the session: it is then called on first use only,
    so reading local tables in process never starts Spark.
    """
    backend = _BACKENDS.get(type(config))
    if backend is None:
        raise ConfigError(f"offline_store: no backend for {type(config).__name__}")
    return backend(config, spark)


def read_view_table(
    store: OfflineStore, defs: RepoDefinitions, view: FeatureView, version: int | None = None
) -> DataFrame:
    """The view's table with exactly the columns its current definition implies."""
    _require_table(store, view)
    return conform(store.read(view.name, version), table_schema(defs, view))


def read_view_arrow(
    store: OfflineStore,
    defs: RepoDefinitions,
    view: FeatureView,
    version: int | None,
    columns: list[str],
    days: tuple[date, date] | None,
) -> pa.Table:
    """``columns`` of the view's table, typed by its current definition, for the UTC days
    ``days`` (both included; None: no rows), read in process."""
    import pyarrow as pa

    _require_table(store, view)
    schema = table_arrow_schema(defs, view)
    wanted = pa.schema([schema.field(c) for c in columns])
    if days is None:
        return wanted.empty_table()
    try:
        return conform_arrow(store.read_arrow(view.name, version, columns, *days), wanted)
    except (pa.ArrowException, OSError) as error:
        raise RetrievalError(f"reading the offline table of {view.name!r}: {error}") from error


def _require_table(store: OfflineStore, view: FeatureView) -> None:
    if not store.exists(view.name):
        raise RetrievalError(
            f"feature view {view.name!r} has no offline table yet: run `granero materialize` first"
        )
