"""The layout of a feature view's offline table, shared by every job and reader.

    <join keys...> event_timestamp created_timestamp <features...> event_date (+ partition columns)

Keys are typed per their entity, features per their declared dtype, timestamps are UTC and
``created_timestamp`` is null when the source has no created field. Tables are partitioned by
``event_date`` (the UTC day of ``event_timestamp``) first, then by the view's
``partition_columns``. Spark and Arrow are imported only inside the functions that use them; each
reader (a Spark plan, or Arrow in process) gets the same columns and types from ``table_dtypes``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from granero.definitions import FeatureView, RepoDefinitions
from granero.types import SCALARS, arrow_type, spark_ddl

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType, StructField, StructType

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
EVENT_DATE = "event_date"
_SECONDS_PER_DAY = 86400
_EPOCH_DAY = date(1970, 1, 1)
_MICROS_PER_DAY = _SECONDS_PER_DAY * 1_000_000


def table_dtypes(defs: RepoDefinitions, view: FeatureView) -> list[tuple[str, str]]:
    """``(column, dtype)`` of the view's table in table order, up to ``event_date`` (a date)."""
    keys = list(defs.join_keys(view).items())
    features = [(f.name, f.dtype) for f in view.features]
    return [*keys, (EVENT_TIMESTAMP, "timestamp"), (CREATED_TIMESTAMP, "timestamp"), *features]


def table_ddl(defs: RepoDefinitions, view: FeatureView) -> list[tuple[str, str]]:
    """``(column, Spark DDL type)`` of the view's table, in table order."""
    return [*[(n, spark_ddl(d)) for n, d in table_dtypes(defs, view)], (EVENT_DATE, "date")]


def table_arrow_schema(defs: RepoDefinitions, view: FeatureView) -> pa.Schema:
    """The view's table as Arrow sees it (the types ``conform_arrow`` casts to)."""
    import pyarrow as pa

    columns = [(n, arrow_type(d)) for n, d in table_dtypes(defs, view)]
    return pa.schema([*columns, (EVENT_DATE, pa.date32())])


def table_columns(defs: RepoDefinitions, view: FeatureView) -> list[str]:
    return [name for name, _ in table_ddl(defs, view)]


def table_schema(defs: RepoDefinitions, view: FeatureView) -> StructType:
    from pyspark.sql.types import StructField, StructType, _parse_datatype_string

    return StructType([StructField(n, _parse_datatype_string(d)) for n, d in table_ddl(defs, view)])


def partition_columns(view: FeatureView) -> list[str]:
    """``event_date`` first, so a materialization window maps onto whole day directories."""
    return [EVENT_DATE, *view.partition_columns]


def parquet_write_options(frame: DataFrame) -> dict[str, str]:
    """Writer options for a table's Parquet files: no dictionary for float and double columns.

    Continuous values rarely repeat, so Parquet's writer would fill a dictionary only to throw
    it away: about a tenth of the write's CPU on float features. Other columns keep it.
    """
    floating = [f.name for f in frame.schema.fields if f.dataType.typeName() in ("float", "double")]
    return {f"parquet.enable.dictionary#{name}": "false" for name in floating}


def utc_date(timestamp: Column) -> Column:
    """The UTC calendar day of a timestamp, whatever the session time zone says."""
    from pyspark.sql import functions as F

    seconds = F.unix_seconds(timestamp)
    days = (seconds - F.pmod(seconds, F.lit(_SECONDS_PER_DAY))) / F.lit(_SECONDS_PER_DAY)
    return F.date_from_unix_date(days.cast("int"))


def utc_day(micros: int) -> date:
    """``utc_date`` of a time given in microseconds since the epoch (exact, also before 1970)."""
    return _EPOCH_DAY + timedelta(days=micros // _MICROS_PER_DAY)


def conform(frame: DataFrame, schema: StructType) -> DataFrame:
    """``frame`` with exactly ``schema``'s columns, in order; absent columns become typed nulls.

    A feature added to a view after its table was written reads as null for older rows. A column
    stored in another type than ``schema``'s (a dtype changed by ``apply --force``, the table not
    rebuilt) converts by the one cast rule (``offline.casts``): exactly, or the job fails naming
    the column and the value, as the in-process (Arrow) reader refuses a lossy cast too.
    """
    stored = {field.name: field.dataType for field in frame.schema.fields}
    return frame.select(
        *[_conformed(field, stored.get(field.name)).alias(field.name) for field in schema.fields]
    )


def _conformed(field: StructField, stored: DataType | None) -> Column:
    from pyspark.sql import functions as F

    from granero.offline.spark_casts import converted_or_failed

    if stored is None:
        return F.lit(None).cast(field.dataType)
    column = F.col(f"`{field.name}`")
    dtype = _DTYPE_OF_DDL.get(field.dataType.simpleString())
    if stored == field.dataType or dtype is None:
        return column.cast(field.dataType)
    label = f"offline table column {field.name!r}"
    return converted_or_failed(column, stored.simpleString(), dtype, label)


_DTYPE_OF_DDL = {
    **{spark_ddl(scalar): scalar for scalar in SCALARS},
    **{spark_ddl(f"list<{scalar}>"): f"list<{scalar}>" for scalar in SCALARS},
}


def conform_arrow(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Arrow twin of ``conform``: exactly ``schema``'s columns, in order, each cast to its type;
    absent columns become typed nulls (a feature added later reads null for older rows)."""
    import pyarrow as pa

    present = set(table.column_names)
    columns = [
        table[field.name].cast(field.type) if field.name in present
        else pa.nulls(table.num_rows, field.type)
        for field in schema
    ]
    return pa.table(columns, schema=schema)
