"""Pushed Arrow columns made into their declared dtypes by the one cast rule (``offline.casts``).

The rule decides (it speaks Spark's type names, so an Arrow type is first named as Spark would
read it: int64 -> bigint, naive timestamps -> timestamp_ntz...); this module only carries the
decision out on Arrow values, in process:

    REFUSED   InvalidRequest naming the view, the column, both types and the reason
    EXACT     Arrow's safe cast (it still refuses a nanosecond a timestamp would drop)
    ROUNDS    a plain cast (decimal -> float: the nearest value, as the rule allows)
    CHECKED   numbers: every value must read back equal (``on_demand.conform.lossless_cast``);
              double -> float32: rounding allowed, overflow to infinity refused;
              anything else (strings that must parse, decimals that must be whole): Arrow's safe
              cast, and on failure the first row whose value does not convert is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from granero.errors import InvalidRequest
from granero.offline.casts import Check, Rule, rule
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa


def converted(array: pa.Array, dtype: str, label: str) -> pa.Array:
    """``array`` as ``dtype``'s Arrow type, or InvalidRequest starting with ``label``."""
    source = spark_type_name(array.type)
    conversion = rule(source, dtype)
    target = arrow_type(dtype)
    if array.type == target:
        return array
    if conversion.rule is Rule.REFUSED:
        raise InvalidRequest(f"{label}: {source} -> {dtype} ({conversion.reason})")
    if conversion.rule is Rule.ROUNDS:
        return array.cast(target, safe=False)
    if conversion.check is Check.NO_OVERFLOW:
        return _not_overflowing(array, target, label)
    if conversion.check is not None and _numeric(array.type) and _numeric(target):
        return _lossless(array, target, label)
    return _safe_cast(array, target, label)


def spark_type_name(arrow: pa.DataType) -> str:
    """The Spark ``simpleString`` of the type Spark would read an Arrow column of this type as
    (unsigned integers take the next wider signed type; uint64 a decimal(20,0))."""
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(arrow):
        return spark_type_name(arrow.value_type)
    if types.is_list(arrow) or types.is_large_list(arrow) or types.is_fixed_size_list(arrow):
        return f"array<{spark_type_name(arrow.value_type)}>"
    if types.is_timestamp(arrow):
        return "timestamp" if arrow.tz else "timestamp_ntz"
    if types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    return _SPARK_NAMES.get(str(arrow), str(arrow))


_SPARK_NAMES = {
    "int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint",
    "uint8": "smallint", "uint16": "int", "uint32": "bigint", "uint64": "decimal(20,0)",
    "halffloat": "float", "float": "float", "double": "double", "bool": "boolean",
    "string": "string", "large_string": "string", "binary": "binary", "large_binary": "binary",
    "date32[day]": "date", "date64[ms]": "date", "null": "void",
}


def _numeric(arrow: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return _numeric(arrow.value_type)
    return pa.types.is_integer(arrow) or pa.types.is_floating(arrow)


def _lossless(array: pa.Array, target: pa.DataType, label: str) -> pa.Array:
    from granero.on_demand.conform import lossless_cast

    try:
        return lossless_cast(array, target)
    except ValueError as problem:
        raise InvalidRequest(f"{label}: {problem}") from None


def _not_overflowing(array: pa.Array, target: pa.DataType, label: str) -> pa.Array:
    """double -> float32: each value rounds to the nearest float32; a finite value that would
    become infinite is refused."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cast = array.cast(target, safe=False)
    flat = (array.flatten(), cast.flatten()) if pa.types.is_list(array.type) else (array, cast)
    overflow = pc.and_(pc.is_finite(flat[0]), pc.invert(pc.is_finite(flat[1]))).fill_null(False)
    if pc.any(overflow).as_py():
        index = pc.index(overflow, True).as_py()
        raise InvalidRequest(f"{label}: {spark_type_name(array.type)} value {flat[0][index].as_py()!r} "
                             f"(value {index}) overflows {target}")
    return cast


def _safe_cast(array: pa.Array, target: pa.DataType, label: str) -> pa.Array:
    import pyarrow as pa

    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        row = _first_failing_row(array, target)
        value = array[row].as_py() if row is not None else None
        raise InvalidRequest(f"{label}: row {row}: {spark_type_name(array.type)} value {value!r} "
                             f"does not convert to {target} exactly") from None


def _first_failing_row(array: pa.Array, target: pa.DataType) -> int | None:
    """The first row whose value alone fails the safe cast (only run once the column failed)."""
    import pyarrow as pa

    for row in range(len(array)):
        try:
            array.slice(row, 1).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return row
    return None
