"""The layout of a feature view's offline table, shared by every job and reader.

    <join keys...> event_timestamp created_timestamp <features...> event_date (+ partition columns)

Keys are typed per their entity, features per their declared dtype, timestamps are UTC and
``created_timestamp`` is null when the source has no created field. Tables are partitioned by
``event_date`` (the UTC day of ``event_timestamp``) first, then by the view's
``partition_columns``. Spark is imported only inside the functions that build columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from granero.definitions import FeatureView, RepoDefinitions
from granero.types import spark_ddl

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
EVENT_DATE = "event_date"
_SECONDS_PER_DAY = 86400


def table_ddl(defs: RepoDefinitions, view: FeatureView) -> list[tuple[str, str]]:
    """``(column, Spark DDL type)`` of the view's table, in table order."""
    keys = [(key, spark_ddl(dtype)) for key, dtype in defs.join_keys(view).items()]
    features = [(f.name, spark_ddl(f.dtype)) for f in view.features]
    stamps = [(EVENT_TIMESTAMP, "timestamp"), (CREATED_TIMESTAMP, "timestamp")]
    return [*keys, *stamps, *features, (EVENT_DATE, "date")]


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


def conform(frame: DataFrame, schema: StructType) -> DataFrame:
    """``frame`` with exactly ``schema``'s columns, in order; absent columns become typed nulls.

    A feature added to a view after its table was written reads as null for older rows.
    """
    from pyspark.sql import functions as F

    present = set(frame.columns)
    return frame.select(
        *[
            (F.col(f"`{field.name}`") if field.name in present else F.lit(None))
            .cast(field.dataType)
            .alias(field.name)
            for field in schema.fields
        ]
    )
