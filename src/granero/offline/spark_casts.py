"""``casts.rule`` as Spark columns: a cast where it is exact, a checked cast where it may not be.

A checked cast costs no extra pass over the data: the check sits in the same expression as the
cast (``CASE WHEN <value would change> THEN raise_error(...) ELSE CAST(...) END``), so the first
value that would change fails the job with a message naming the column, both types and the value.
pyspark is imported inside the functions, like every module of ``granero.offline``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from granero.offline.casts import INTEGER_BITS, Check, array_element, rule
from granero.types import list_element, spark_ddl

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import Column

_SAMPLE_CHARS = 100
_TARGET_BITS = {"int32": 32, "int64": 64, "float32": 32, "float64": 64}
_INFINITY = float("inf")


def refusals(source_types: dict[str, str], dtypes: dict[str, str]) -> list[str]:
    """One line per column (keyed by its label) whose source type cannot become its dtype:
    ``<label>: bigint -> timestamp (reason)``; empty when every conversion is allowed."""
    lines = []
    for label, source_type in source_types.items():
        conversion = rule(source_type, dtypes[label])
        if not conversion.allowed:
            lines.append(f"{label}: {source_type} -> {dtypes[label]} ({conversion.reason})")
    return lines


def converted(column: Column, source_type: str, dtype: str, label: str) -> Column:
    """``column`` cast to ``dtype``; if the pair is CHECKED, a value that would change fails the
    job with ``"<label>: <type> value <v> <why> <dtype>"``. Call only for allowed pairs."""
    from pyspark.sql import functions as F

    cast = column.cast(spark_ddl(dtype))
    check = rule(source_type, dtype).check
    if check is None:
        return cast
    element, source_element = list_element(dtype), array_element(source_type)
    if element is None or source_element is None:
        failure = _failure(column, label, source_type, dtype, check)
    else:
        sample = F.element_at(F.filter(column, value_would_change(source_element, element)), 1)
        failure = _failure(sample, label, source_element, element, check)
    return F.when(would_change(column, source_type, dtype), failure).otherwise(cast)


def converted_or_failed(column: Column, source_type: str, dtype: str, label: str) -> Column:
    """``converted`` for an allowed pair; for a refused one, a job that meets a non-null value
    fails naming ``label`` and both types (nulls alone convert: nothing is lost)."""
    from pyspark.sql import functions as F

    conversion = rule(source_type, dtype)
    if conversion.allowed:
        return converted(column, source_type, dtype, label)
    failure = F.raise_error(F.lit(f"{label}: {source_type} -> {dtype} ({conversion.reason})"))
    return F.when(column.isNotNull(), failure).otherwise(F.lit(None).cast(spark_ddl(dtype)))


def would_change(column: Column, source_type: str, dtype: str) -> Column:
    """True where casting ``column`` (of an allowed, CHECKED pair) would change or lose a value;
    for lists, where any element would."""
    from pyspark.sql import functions as F

    element, source_element = list_element(dtype), array_element(source_type)
    if element is None or source_element is None:
        return value_would_change(source_type, dtype)(column)
    return F.exists(column, value_would_change(source_element, element))


def _failure(value: Column, label: str, source_type: str, dtype: str, check: Check) -> Column:
    from pyspark.sql import functions as F

    text = F.coalesce(F.substring(value.cast("string"), 1, _SAMPLE_CHARS), F.lit("?"))
    return F.raise_error(F.concat(
        F.lit(f"{label}: {source_type} value "), text,
        F.lit(f" {check.failure} {dtype}; materialization never casts lossily (fix the source, "
              "declare a wider dtype, or write the conversion you want as a transformation)"),
    ))


def value_would_change(source_type: str, dtype: str) -> Callable[[Column], Column]:
    """For a CHECKED scalar pair: a predicate, true on a value the cast would change or lose
    (never on null)."""
    check = rule(source_type, dtype).check
    predicates = {
        Check.IN_RANGE: lambda x: x.try_cast(spark_ddl(dtype)).isNull(),
        Check.WHOLE: lambda x: _not_whole_in_range(x, _TARGET_BITS[dtype]),
        Check.WHOLE_DECIMAL: lambda x: _changes_through(x, spark_ddl(dtype)),
        Check.REPRESENTABLE: lambda x: _inexact_float(x, source_type, dtype),
        Check.NO_OVERFLOW: lambda x: _overflows_float32(x),
        Check.PARSES: lambda x: _does_not_parse(x, dtype),
    }
    changes = predicates[check]
    return lambda x: x.isNotNull() & changes(x)


def _not_whole_in_range(x: Column, bits: int) -> Column:
    """Whole and in [-2^(bits-1), 2^(bits-1)): both bounds are exact doubles; NaN fails both."""
    from pyspark.sql import functions as F

    bound = float(2 ** (bits - 1))
    return ~((x % 1 == 0) & (x >= F.lit(-bound)) & (x < F.lit(bound)))


def _changes_through(x: Column, target: str) -> Column:
    """Decimal compared with the integer it becomes: Spark compares them as decimals, exactly."""
    y = x.try_cast(target)
    return y.isNull() | (y != x)


def _inexact_float(x: Column, source_type: str, dtype: str) -> Column:
    """An integer whose float differs: back-cast and compared as integers. The float 2^(bits-1)
    would saturate to the largest integer on the way back, so it is refused by itself."""
    from pyspark.sql import functions as F

    as_float = x.cast(spark_ddl(dtype))
    back = as_float.try_cast(source_type)
    top = float(2 ** (INTEGER_BITS[source_type] - 1))
    return back.isNull() | (back != x) | (as_float >= F.lit(top))


def _overflows_float32(x: Column) -> Column:
    from pyspark.sql import functions as F

    infinity = F.lit(_INFINITY)
    return (F.abs(x.cast("float")) == infinity) & (F.abs(x) != infinity)


def _does_not_parse(x: Column, dtype: str) -> Column:
    """Unparseable text; for float dtypes also a finite-looking number that overflows to infinity."""
    from pyspark.sql import functions as F

    parsed = x.try_cast(spark_ddl(dtype))
    if dtype not in ("float32", "float64"):
        return parsed.isNull()
    overflow = (F.abs(parsed) == F.lit(_INFINITY)) & ~F.lower(x).contains("inf")
    return parsed.isNull() | overflow

