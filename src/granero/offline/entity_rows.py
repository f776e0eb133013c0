"""Entity rows in: the rows a training set is asked for, from a Spark or pandas DataFrame or a file.

Both engines read the same columns of them: ``event_timestamp`` and the requested views' join keys
(``join_columns``). Every other column belongs to the caller. On the pandas path the engines are
handed the join columns alone and the caller's frame is given back as it was (``retrieval``'s
``training_frame``), so no column changes dtype on the way.

Checks come first and say what to fix: duplicate or missing columns (with the views that need each
missing one), output-name clashes, join keys of the wrong type family. A CSV file carries no
types: Spark guesses them, and a column it could not read as a timestamp or a number stays text.
Its join columns are parsed to their types here, and a value that does not parse is named with
its file and column, instead of failing later inside a Spark job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from granero.definitions.refs import ViewFeatures
from granero.errors import RetrievalError
from granero.offline.schema import EVENT_TIMESTAMP
from granero.offline.spark_errors import spark_errors
from granero.types import arrow_type, spark_ddl

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession


def join_columns(requested: list[ViewFeatures]) -> dict[str, str]:
    """The entity columns the join reads, with their dtypes: ``event_timestamp``, then each key."""
    keys = {k: d for vf in requested for k, d in vf.join_keys.items()}
    return {EVENT_TIMESTAMP: "timestamp", **keys}


def load_entities(spark: SparkSession, entities: Any, requested: list[ViewFeatures]) -> DataFrame:
    """A Spark DataFrame of entity rows from a DataFrame, a pandas DataFrame or a file path.

    Paths: a Delta table (a folder with ``_delta_log``), CSV (``.csv``, header row) or Parquet.
    Naive pandas timestamps are taken as UTC. An empty pandas frame keeps its columns' types.
    """
    from pyspark.sql import DataFrame

    if isinstance(entities, DataFrame):
        return entities
    if isinstance(entities, str | Path):
        return _read_entity_file(spark, str(entities), join_columns(requested))
    if hasattr(entities, "columns") and hasattr(entities, "dtypes"):
        return from_pandas(spark, entities, join_columns(requested))
    raise RetrievalError(
        f"entity rows must be a Spark or pandas DataFrame or a path, not {type(entities).__name__}"
    )


def _read_entity_file(spark: SparkSession, path: str, join: dict[str, str]) -> DataFrame:
    local = Path(path.removeprefix("file://"))
    if "://" not in path and not local.exists():
        raise RetrievalError(f"entity file {path} does not exist")
    with spark_errors(RetrievalError, f"reading entity rows from {path}"):
        if (local / "_delta_log").is_dir():
            return spark.read.format("delta").load(path)
        if path.rstrip("/").endswith(".csv"):
            frame = spark.read.option("header", "true").option("inferSchema", "true").csv(path)
            return typed_csv(frame, path, join)
        from granero.offline.sources import read_files  # pandas' nanosecond timestamps too

        return read_files(spark, "parquet", path, {})


def typed_csv(frame: DataFrame, path: str, join: dict[str, str]) -> DataFrame:
    """``frame`` with each join column Spark read as text parsed to its dtype.

    Raises naming the file, the column and the first value that does not parse. Columns Spark
    typed itself cost nothing; a text column costs one job (an empty file gives text columns).
    """
    from pyspark.sql import functions as F

    types = dict(frame.dtypes)
    for column, dtype in join.items():
        if types.get(column) != "string" or dtype == "string":
            continue
        raw = F.col(f"`{column}`")
        parsed = raw.try_cast(spark_ddl(dtype))
        bad = frame.where(raw.isNotNull() & parsed.isNull()).select(raw).first()
        if bad is not None:
            raise RetrievalError(
                f"entity file {path}: column {column!r} holds {bad[0]!r}, which is not a {dtype}"
                + (" (e.g. 2026-01-31 12:00:00 or 2026-01-31T12:00:00Z)" if dtype == "timestamp" else "")
            )
        frame = frame.withColumn(column, parsed)
    return frame


def from_pandas(spark: SparkSession, frame: pd.DataFrame, join: dict[str, str]) -> DataFrame:
    """The pandas rows as a Spark DataFrame, timestamps as instants (naive ones are UTC).

    Through ``entity_table``, so Spark joins the very values the local engine joins, and an empty
    frame keeps its columns' types (Spark infers none from no rows). A frame Arrow cannot type
    (mixed objects) or whose Arrow types Spark does not take goes through Spark's own conversion.
    """
    import pyarrow as pa
    from pyspark.errors import PySparkException

    with spark_errors(RetrievalError, "converting the pandas entity rows to Spark"):
        try:
            return spark.createDataFrame(entity_table(frame, join))
        except (pa.ArrowException, PySparkException, TypeError, ValueError):
            if len(frame) == 0:  # Spark's own conversion infers nothing from no rows
                raise
            return spark.createDataFrame(_as_utc(frame))


def _as_utc(frame: pd.DataFrame) -> pd.DataFrame:
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
    return frame


def check_entities(
    columns: list[str], types: dict[str, str], requested: list[ViewFeatures], outputs: list[str]
) -> None:
    """The entity rows must carry event_timestamp and every join key (of its dtype's family),
    and no output column. ``types``: each column's Spark SQL type name (``bigint``...)."""
    check_entity_columns(columns, requested, outputs)
    error = key_type_error(types, requested)
    if error:
        raise RetrievalError(error)


def check_entity_columns(columns: list[str], requested: list[ViewFeatures], outputs: list[str]) -> None:
    """``check_entities`` on column names alone: no duplicates, none missing, no output clash."""
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise RetrievalError(f"entity rows have duplicate columns {duplicated}")
    missing = {c: views for c, views in _needed_by(requested).items() if c not in columns}
    if missing:
        needs = "; ".join(f"{c!r} by {views}" for c, views in missing.items())
        raise RetrievalError(
            f"entity rows lack column(s) {list(missing)} (needed: {needs}); they have {columns}"
        )
    clashing = sorted(set(outputs) & set(columns))
    if clashing:
        raise RetrievalError(
            f"entity rows already have column(s) {clashing}, which the features would "
            "produce; rename them or use full feature names"
        )


def _needed_by(requested: list[ViewFeatures]) -> dict[str, list[str]]:
    """Each join column, with the views that read it (every view reads event_timestamp)."""
    needed: dict[str, list[str]] = {EVENT_TIMESTAMP: [vf.view.name for vf in requested]}
    for vf in requested:
        for key in vf.join_keys:
            needed.setdefault(key, []).append(vf.view.name)
    return needed


_KEY_FAMILIES = {
    "int32": ("tinyint", "smallint", "int", "bigint"),
    "int64": ("tinyint", "smallint", "int", "bigint"),
    "string": ("string",),
    "bool": ("boolean",),
    "bytes": ("binary",),
    "timestamp": ("timestamp", "timestamp_ntz", "date"),
}
_ALL_NULL = "void"
"""Spark's name for a column of nulls alone (an empty object column): it fits every key."""


def key_type_error(types: dict[str, str], requested: list[ViewFeatures]) -> str | None:
    """Why a join key column does not hold values of its dtype's family (None: all do).

    A string column for an int64 key is refused by name, instead of failing (or silently
    nulling) inside the join. ``types`` maps columns to Spark SQL type names.
    """
    keys = {k: d for vf in requested for k, d in vf.join_keys.items()}
    for key, dtype in keys.items():
        if types[key] not in (*_KEY_FAMILIES.get(dtype, (types[key],)), _ALL_NULL):
            return (
                f"entity column {key!r} is {types[key]}, but join key {key!r} is {dtype}; "
                "cast it before asking for features"
            )
    return None


_SPARK_NAMES = {
    "int8": "tinyint",
    "int16": "smallint",
    "int32": "int",
    "int64": "bigint",
    "uint8": "bigint",
    "uint16": "bigint",
    "uint32": "bigint",
    "float": "float",
    "double": "double",
    "bool": "boolean",
    "string": "string",
    "large_string": "string",
    "binary": "binary",
    "large_binary": "binary",
    "null": _ALL_NULL,
}
"""Arrow types of pandas columns that Spark takes as the same values, by Spark SQL type name."""


def entity_types(frame: pd.DataFrame) -> dict[str, str] | str:
    """Each pandas column's Spark SQL type name, as Spark infers it (through Arrow), or why a
    column is not one the local engine takes (then Spark, and its own errors, answer)."""
    import pandas as pd
    import pyarrow as pa

    try:
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as error:
        return f"Arrow cannot type the entity rows: {error}"
    types = {}
    for column, dtype in zip(schema, frame.dtypes, strict=True):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        name = _SPARK_NAMES.get(str(kind))
        if pd.api.types.is_datetime64_any_dtype(dtype):
            name = "timestamp"
        if name is None:
            return (
                f"entity column {column.name!r} is {column.type}; the local engine takes ints, "
                "floats, bools, strings, bytes, categories of them and datetime64 columns"
            )
        types[column.name] = name
    return types


def entity_table(frame: pd.DataFrame, join: dict[str, str]) -> pa.Table:
    """The pandas entity rows as Arrow, as Spark takes them: timestamps UTC microseconds (naive
    ones are UTC, finer ones truncated like Spark's conversion), categories as their values,
    small unsigned ints as int64, columns of nulls alone typed (join columns by their dtype,
    others as strings), no pandas metadata."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [_as_spark_takes(c, join.get(n)) for n, c in zip(table.column_names, table.columns, strict=True)]
    return pa.table(columns, names=table.column_names)


def _as_spark_takes(column: pa.ChunkedArray, dtype: str | None) -> pa.ChunkedArray:
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_null(column.type):
        return column.cast(arrow_type(dtype) if dtype else pa.string())
    if column.type in (pa.uint8(), pa.uint16(), pa.uint32()):  # Spark has no unsigned types
        return column.cast(pa.int64())
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("us", tz="UTC"), safe=False)
    return column
