"""Windowed aggregates for a training set on Spark: entity rows + a view's events, no range join.

The rule and the arithmetic live in ``granero.aggregation`` (pure numpy/Arrow); this module only
moves data so that the in-process engine's ``aggregate_as_of`` runs, unchanged, next to the data:

1. Entity rows and events are each tagged with a bucket, ``pmod(xxhash64(typed keys), N)``:
   every key's rows and events meet in one bucket. The keys are cast to their dtypes first, on
   both sides, so a string ``"1"`` and an int ``1`` never meet unless their dtype says they do.
2. ``cogroup(...).applyInArrow`` hands each bucket's entity rows and events to one Python call,
   which builds the tiles of that bucket's events once and answers all its rows at once
   (vectorized: no Python per row). A key's tiles and windows depend on that key's events alone,
   so a value is the same bit for bit whatever else shares its bucket, and equal to the in-process
   engine's.
3. Each entity row comes back once, its columns untouched, followed by the aggregate columns.
   Row order is not preserved (the as-of join's contract too).

Cost and memory: a bucket's call pays the fold's fixed cost (one vectorized step per tile of the
largest window) once, however many keys it holds, so retrieval uses one bucket per core
(``spark.default.parallelism``): 8 buckets on 2 cores took ~20% longer than 2. One bucket's
events sit in one Python worker at a time: raise ``spark.default.parallelism`` when a bucket's
events outgrow a worker. One very hot key stays in one bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from granero.aggregation.engine import AggregationSpec, aggregate_as_of
from granero.aggregation.spec import aggregation_spec
from granero.definitions.aggregation import output_dtype
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from granero.types import spark_ddl, spark_type

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

    from granero.definitions import RepoDefinitions
    from granero.definitions.refs import ViewFeatures

_BUCKET = "__granero_bucket"
TIE_ORDERED = ("first", "last")
"""The functions that order events tied on event time by their created time."""
_TIME = "__granero_time"


def requested_spec(defs: RepoDefinitions, vf: ViewFeatures, outputs: list[str]) -> AggregationSpec:
    """The view's spec cut to the aggregates asked for, in the order asked, each renamed to its
    output column."""
    spec = aggregation_spec(defs, vf.view)
    by_name = {a.output: a for a in spec.aggregates}
    asked = [replace(by_name[n], output=o) for n, o in zip(vf.features, outputs, strict=True)]
    return replace(spec, aggregates=asked)


def event_columns(spec: AggregationSpec) -> list[str]:
    """The offline-table columns the aggregates read: keys, event time, the aggregated columns,
    and the created time only when ``first``/``last`` order ties by it (no other function reads
    it: one column fewer through the shuffle and into Python)."""
    read = dict.fromkeys(a.column for a in spec.aggregates if a.column not in spec.keys)
    created = [CREATED_TIMESTAMP] if any(a.function in TIE_ORDERED for a in spec.aggregates) else []
    return [*spec.keys, EVENT_TIMESTAMP, *created, *read]


def aggregate_join(entities: DataFrame, events: DataFrame, spec: AggregationSpec, buckets: int) -> DataFrame:
    """``entities`` (with ``event_timestamp`` and the keys) plus one column per aggregate.

    ``events`` are offline-table rows (``event_columns``). Every entity row comes back exactly
    once with its columns unchanged; a row without a key or a time gets nulls.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    columns = entities.columns
    time = F.col(f"`{EVENT_TIMESTAMP}`").cast("timestamp").alias(_TIME)
    internal = [_key(i) for i in range(len(spec.keys))]
    passed = [F.col(f"`{c}`") for c in columns]
    asked = entities.select(*passed, *_typed_keys(spec, internal), time, _bucket(spec, buckets))
    given = events.select(*_typed_keys(spec, list(spec.keys)), *_event_values(spec), _bucket(spec, buckets))
    outputs = [StructField(a.output, spark_type(output_dtype(a.function, a.dtype))) for a in spec.aggregates]
    schema = StructType([*entities.schema.fields, *outputs])
    answer = _per_bucket(spec, columns, _arrow_schema(schema))
    return asked.groupBy(_BUCKET).cogroup(given.groupBy(_BUCKET)).applyInArrow(answer, schema)


def _per_bucket(
    spec: AggregationSpec, columns: list[str], schema: pa.Schema
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """The function each bucket's (entity rows, events) is handed to, on an executor."""

    def answer(rows: pa.Table, events: pa.Table) -> pa.Table:
        import pyarrow as pa

        if rows.num_rows == 0:
            return schema.empty_table()
        keys = {key: rows[_key(i)] for i, key in enumerate(spec.keys)}
        asking = pa.table({**keys, EVENT_TIMESTAMP: rows[_TIME]})
        values = aggregate_as_of(asking, events, spec)
        given = [rows[c] for c in columns] + [values[a.output] for a in spec.aggregates]
        return pa.table(given, names=schema.names).cast(schema)

    return answer


def _typed_keys(spec: AggregationSpec, names: list[str]) -> list[Column]:
    """The keys cast to their dtypes, as ``names``."""
    from pyspark.sql import functions as F

    return [F.col(f"`{k}`").cast(spark_ddl(d)).alias(n) for (k, d), n in zip(spec.keys.items(), names, strict=True)]


def _key(index: int) -> str:
    return f"__granero_key_{index}"


def _event_values(spec: AggregationSpec) -> list[Column]:
    from pyspark.sql import functions as F

    rest = event_columns(spec)[len(spec.keys):]
    return [F.col(f"`{c}`") for c in rest]


def _bucket(spec: AggregationSpec, buckets: int) -> Column:
    """``pmod(xxhash64(typed keys), buckets)``: equal typed key tuples, equal buckets."""
    from pyspark.sql import functions as F

    typed = [F.col(f"`{k}`").cast(spark_ddl(d)) for k, d in spec.keys.items()]
    return F.pmod(F.xxhash64(*typed), F.lit(buckets)).alias(_BUCKET)


def _arrow_schema(schema) -> pa.Schema:
    """The Arrow schema Spark expects back for ``schema`` (UTC microsecond timestamps)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)

