"""What a transform returns, made into its declared Arrow type, or refused: never a lossy cast.

    same type                           kept as is
    a column of nulls (Arrow null)      nulls of the declared type (also as list elements: a
                                        column of [] and [None] is a list<null> to Arrow)
    int*  -> int32/int64/float32/64     each value must come back equal (range, 2**53...)
    float -> float32/float64/int*       each value must come back equal (0.1 -> float32 refused,
                                        1.5 -> int refused; NaN stays NaN)
    string/large_string -> string, binary/large_binary -> bytes
    timestamp (any unit; naive = UTC) -> timestamp: no sub-microsecond part may be dropped
    list/large_list/fixed_size_list -> list<T>: elements by the same rules

Everything else (booleans <-> numbers, strings <-> numbers, numbers <-> timestamps...) is
refused with the reason: a transform that means to convert says so in its own code. The same
rule as the offline cast rule (``offline.casts``), for Arrow values in process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def as_arrow(value: Any) -> pa.Array:
    """A transform's output column as an Arrow array (pyarrow, numpy, pandas or a list)."""
    import pyarrow as pa

    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    if isinstance(value, pa.Array):
        return value
    if hasattr(value, "__arrow_array__") or hasattr(value, "dtype") or isinstance(value, list | tuple):
        return pa.array(value)
    raise TypeError(f"a column must be an array (pyarrow, numpy, pandas or a list), not {type(value).__name__}")


def lossless_cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    """``array`` as ``target`` when every value converts exactly; ValueError saying why not."""
    import pyarrow as pa

    if array.type == target:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    reason = refusal(array.type, target)
    if reason:
        raise ValueError(reason)
    if pa.types.is_list(target):
        lossless_cast(_list_values(array), target.value_type)
    numeric = _family(array.type) in ("integer", "float") and _family(target) in ("integer", "float")
    converted = _cast(array, target, safe=not numeric)  # numbers: the round trip is the check
    if numeric:
        _check_round_trip(array, converted)
    return converted


def refusal(source: pa.DataType, target: pa.DataType) -> str | None:
    """Why ``source`` values never become ``target`` ones (None: they may, value by value)."""
    import pyarrow as pa

    if pa.types.is_null(source):  # nulls only (e.g. the elements of [] or [None]): any type
        return None
    families = (_family(source), _family(target))
    if families[0] != families[1] and families != ("integer", "float") and families != ("float", "integer"):
        return f"{source} does not convert to {target}"
    if pa.types.is_list(target):
        return refusal(source.value_type, target.value_type)
    return None


def _family(dtype: pa.DataType) -> str:
    import pyarrow as pa

    checks = (
        ("integer", pa.types.is_integer), ("float", pa.types.is_floating),
        ("bool", pa.types.is_boolean), ("string", pa.types.is_string),
        ("string", pa.types.is_large_string), ("bytes", pa.types.is_binary),
        ("bytes", pa.types.is_large_binary), ("timestamp", pa.types.is_timestamp),
        ("list", pa.types.is_list), ("list", pa.types.is_large_list),
        ("list", pa.types.is_fixed_size_list),
    )
    return next((name for name, check in checks if check(dtype)), str(dtype))


def _list_values(array: pa.Array) -> pa.Array:
    return array.flatten()


def _cast(array: pa.Array, target: pa.DataType, safe: bool) -> pa.Array:
    import pyarrow as pa

    try:
        return array.cast(target, safe=safe)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"{array.type} does not convert to {target} without loss: {error}") from None


def _check_round_trip(original: pa.Array, converted: pa.Array) -> None:
    """Every value read back in its own type equals the original (NaN equals NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    back = converted.cast(original.type, safe=False)
    same = pc.equal(back, original)
    if pa.types.is_floating(original.type):
        same = pc.or_kleene(same, pc.and_(pc.is_nan(back), pc.is_nan(original)))
    changed = pc.invert(same.fill_null(True))
    if pc.any(changed).as_py():
        index = pc.index(changed, True).as_py()
        raise ValueError(
            f"{original.type} does not convert to {converted.type} without loss: "
            f"value {original[index].as_py()!r} (row {index}) would become {converted[index].as_py()!r}"
        )
