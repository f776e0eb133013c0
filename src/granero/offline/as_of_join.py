"""The point-in-time ("as of") join: DataFrames in, DataFrame out, no Spark action.

For an entity row (keys, ts) it finds, per view, the table row with equal keys (typed values,
never a concatenated string) whose event_timestamp lies in [ts - ttl, ts], both ends inclusive,
with the greatest (event_timestamp, created_timestamp), a null created_timestamp lowest. It never
returns a value with an event timestamp later than the entity row's.

How, in one shuffle per view and no join:

1. Entity rows and table rows are stacked into one frame. An entity row carries its whole original
   row as a struct (so duplicates, labels and column order survive untouched); a table row carries
   its (event_timestamp, created_timestamp, features) as a struct.
2. The frame is partitioned by (typed keys, time bucket) and sorted by (time, side, created), table
   rows before entity rows at equal time, so a row stamped exactly at ts is visible to it.
3. A running ``last(row, ignorenulls=True)`` window carries the latest table row forward onto every
   entity row. The carried value is the whole struct, which is never null, so a null *feature
   value* is carried like any other.
4. A carried row older than ts - ttl is discarded (its values become null).

Skew: partitioning by the keys alone would send all the history of one hot key to one task.
Rows are therefore also partitioned by a time bucket of width W >= ttl. An entity row only ever
needs table rows from the last ttl, which lie in its own bucket or the previous one, so each table
row is also copied into the next bucket when its ttl reaches into it. The answer is exact, a hot
key is spread over its buckets, and at most ttl/W of the table rows are copied. The default W is
4 x ttl (at least one day). AQE's skew handling does not apply to windows, hence this design.

Pruning (``visible_rows``): when the entity rows are few, most table rows are seen by none of
them, yet would cross the shuffle. A table row at time e is visible to some entity row exactly
when an entity row with its keys has ts in [e, e + ttl]. Cut time into buckets of width ttl: such
a ts lies in e's bucket (then that bucket's latest entity ts is >= e) or in the next one (then
that bucket's earliest entity ts is <= e + ttl), and either fact implies it. So one aggregate of
the entity rows per (keys, bucket) -- latest ts of the bucket, earliest ts of the next -- answers
the test with one lookup per table row: a broadcast semi-join, exact, with no per-key blow-up.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from granero.types import spark_ddl

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_ENTITY = "__granero_entity"
_ROW = "__granero_row"
_TIME = "__granero_time"
_SIDE = "__granero_side"
_BUCKET = "__granero_bucket"
_CARRIED = "__granero_carried"
_LATEST = "__granero_latest"
_EARLIEST_NEXT = "__granero_earliest_next"
_TABLE_SIDE, _ENTITY_SIDE = 0, 1
_MIN_BUCKET = timedelta(days=1)
_MICROS = timedelta(microseconds=1)


@dataclass(frozen=True)
class AsOfSpec:
    """One view's part of a retrieval."""

    keys: dict[str, str]
    """Join key -> dtype; both sides are cast to it before comparing."""
    ttl: timedelta
    outputs: dict[str, str]
    """Feature -> output column name, in output order."""
    bucket_width: timedelta | None = None
    """Width of the skew-spreading time buckets (default: 4 x ttl, at least a day)."""

    @property
    def width(self) -> timedelta:
        return max(self.bucket_width or max(self.ttl * 4, _MIN_BUCKET), self.ttl)


def as_of_join(entities: DataFrame, table: DataFrame, spec: AsOfSpec) -> DataFrame:
    """``entities`` (which must have ``event_timestamp`` and the keys) plus one column per output.

    Every entity row comes back exactly once, with its columns unchanged and in order, followed by
    the outputs; rows without a match within ttl get nulls. Row order is not preserved.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    columns = entities.columns
    stacked = _entity_side(entities, spec).unionByName(
        _table_side(table, spec), allowMissingColumns=True
    )
    keys = [F.col(_key(i)) for i in range(len(spec.keys))]
    running = (
        Window.partitionBy(*keys, F.col(_BUCKET))
        .orderBy(F.col(_TIME), F.col(_SIDE), F.col(_ROW)[CREATED_TIMESTAMP].asc_nulls_first())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    carried = stacked.withColumn(_CARRIED, F.last(_ROW, ignorenulls=True).over(running))
    fresh = _micros(F.col(_CARRIED)[EVENT_TIMESTAMP]) >= _micros(F.col(_TIME)) - _as_micros(
        spec.ttl
    )
    return carried.where(F.col(_SIDE) == _ENTITY_SIDE).select(
        *[F.col(_ENTITY)[c].alias(c) for c in columns],
        *[F.when(fresh, F.col(_CARRIED)[f]).alias(out) for f, out in spec.outputs.items()],
    )


def visible_rows(table: DataFrame, entities: DataFrame, spec: AsOfSpec) -> DataFrame:
    """The table rows some entity row can see (same keys, event time in [ts - ttl, ts]).

    Only drops rows no entity row could be given, so ``as_of_join`` answers the same on the
    result; the entity rows' (keys, bucket) summary is broadcast, so call it for few entities.
    """
    from pyspark.sql import functions as F

    probe = F.broadcast(_bucket_summary(entities, spec))
    event = _micros(F.col(EVENT_TIMESTAMP))
    matched = [
        F.col(f"`{k}`").cast(spark_ddl(d)) == probe[_key(i)]
        for i, (k, d) in enumerate(spec.keys.items())
    ]
    seen = (probe[_LATEST] >= event) | (probe[_EARLIEST_NEXT] <= event + _as_micros(spec.ttl))
    condition = [*matched, _bucket(event, spec.ttl) == probe[_BUCKET], seen]
    return table.join(probe, on=condition, how="left_semi")


def _bucket_summary(entities: DataFrame, spec: AsOfSpec) -> DataFrame:
    """Per (keys, ttl-wide bucket): the latest entity ts in it and the earliest in the next."""
    from pyspark.sql import functions as F

    ts = _micros(F.col(f"`{EVENT_TIMESTAMP}`").cast("timestamp"))
    own, none = _bucket(ts, spec.ttl), F.lit(None).cast("long")
    # Each entity row speaks for its own bucket (as a latest) and the one before (as an earliest).
    both = F.explode(F.array(
        F.struct(own.alias("b"), ts.alias("own"), none.alias("next")),
        F.struct((own - 1).alias("b"), none.alias("own"), ts.alias("next")),
    ))
    keys = _typed_keys(spec)
    present = _all(ts.isNotNull(), *[k.isNotNull() for k in keys])
    # Few rows: one task aggregates them in the job that broadcasts them (no shuffle, no 2nd job).
    return (
        entities.coalesce(1)
        .where(present)
        .select(*keys, both.alias("p"))
        .groupBy(*[_key(i) for i in range(len(keys))], F.col("p.b").alias(_BUCKET))
        .agg(F.max("p.own").alias(_LATEST), F.min("p.next").alias(_EARLIEST_NEXT))
    )


def _all(*conditions: Column) -> Column:
    return functools.reduce(operator.and_, conditions)


def _entity_side(entities: DataFrame, spec: AsOfSpec) -> DataFrame:
    from pyspark.sql import functions as F

    time = F.col(f"`{EVENT_TIMESTAMP}`").cast("timestamp")
    return entities.select(
        *_typed_keys(spec),
        time.alias(_TIME),
        F.lit(_ENTITY_SIDE).alias(_SIDE),
        _bucket(_micros(time), spec.width).alias(_BUCKET),
        F.struct(*[F.col(f"`{c}`") for c in entities.columns]).alias(_ENTITY),
    )


def _table_side(table: DataFrame, spec: AsOfSpec) -> DataFrame:
    """Table rows, each in its own bucket and, when its ttl reaches there, the next one."""
    from pyspark.sql import functions as F

    event = F.col(EVENT_TIMESTAMP)
    start, reach = _micros(event), _micros(event) + _as_micros(spec.ttl)
    buckets = F.array_distinct(F.array(_bucket(start, spec.width), _bucket(reach, spec.width)))
    row = F.struct(event, F.col(CREATED_TIMESTAMP), *[F.col(f"`{f}`") for f in spec.outputs])
    present = _all(event.isNotNull(), *[F.col(f"`{k}`").isNotNull() for k in spec.keys])
    return table.where(present).select(
        *_typed_keys(spec),
        event.alias(_TIME),
        F.lit(_TABLE_SIDE).alias(_SIDE),
        F.explode(buckets).alias(_BUCKET),
        row.alias(_ROW),
    )


def _key(index: int) -> str:
    return f"__granero_key_{index}"


def _typed_keys(spec: AsOfSpec) -> list[Column]:
    from pyspark.sql import functions as F

    return [
        F.col(f"`{k}`").cast(spark_ddl(d)).alias(_key(i))
        for i, (k, d) in enumerate(spec.keys.items())
    ]


def _micros(timestamp: Column) -> Column:
    from pyspark.sql import functions as F

    return F.unix_micros(timestamp)


def _as_micros(duration: timedelta) -> int:
    return duration // _MICROS


def _bucket(micros: Column, width: timedelta) -> Column:
    """floor(micros / width) in exact integer arithmetic (also before 1970)."""
    from pyspark.sql import functions as F

    size = F.lit(_as_micros(width))
    # ``div`` is integral division; the dividend is a multiple of size, so no rounding is involved
    # (a decimal division was exact too, but cost a third of a microsecond per row).
    return F.call_function("div", micros - F.pmod(micros, size), size)
