"""Arrow arrays from Python values of a known dtype: the request path's inputs, built cheaply.

``pa.array`` goes through Arrow's generic sequence converter (type checks, inference machinery):
about 4.5 us for one value, paid per input per request. The request path already knows each
value's Python type (decoded from the store, or checked by ``request_values``), so for the
fixed-width dtypes (int32, int64, float32, float64, and timestamps held as int64 micros) it packs
the values with the ``array`` module and wraps that buffer (``pa.Array.from_buffers``): about
2 us for one value, and the same array. Other dtypes (bool, string, bytes, lists) and anything
the packing refuses go to ``pa.array``, so the result is always ``pa.array``'s.

Guarantee (``tests/on_demand/test_arrays.py``, against ``pa.array`` as the oracle):
``typed_array(values, dtype, nulls)`` equals ``pa.array(values with None at nulls, arrow_type(dtype))``
for values of the dtype's Python type, whatever the values at ``nulls`` hold.
"""

from __future__ import annotations

import array
import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from granero.types import arrow_type
from granero.value_fits import INT_RANGE, ints_in_range

if TYPE_CHECKING:
    import pyarrow as pa

ARROW_TYPES = functools.lru_cache(maxsize=64)(arrow_type)
"""``arrow_type``, built once per dtype (a request pays for it per field otherwise)."""

_CODES = {"int32": "i", "int64": "q", "float32": "f", "float64": "d", "timestamp": "q"}
_WIDTHS = {"int32": 4, "int64": 8, "float32": 4, "float64": 8, "timestamp": 8}
PACKED: dict[str, str] = {
    dtype: code for dtype, code in _CODES.items()
    if sys.byteorder == "little" and array.array(code).itemsize == _WIDTHS[dtype]
}
"""Per fixed-width dtype, the ``array`` typecode laying its values out as Arrow does (none on
a big-endian platform: every dtype then goes through ``pa.array``)."""

_PACKS = {"i": int, "q": int, "f": float, "d": float}
"""The one Python type a typecode's values must have: ``array`` would also take a bool as an
int, or an int as a float (rounding past 2**53), where ``pa.array`` refuses them."""


def typed_array(values: Sequence[Any], dtype: str, nulls: Sequence[int] = (), *,
                checked: bool = False) -> pa.Array:
    """``values`` as an Arrow array of ``dtype``, null at the rows ``nulls`` (whatever the values
    there hold, e.g. the 0 a ``ViewColumns`` keeps where a fixed-width value is missing).
    ``checked``: the caller saw every value be of the dtype's one Python type (int, float)."""
    code = PACKED.get(dtype)
    if code is not None:
        packed = _packed(values, code, checked)
        if packed is not None:
            return _wrap(packed, dtype, len(values), nulls)
    return _converted(values, dtype, nulls)


def _packed(values: Sequence[Any], code: str, checked: bool) -> array.array | None:
    """The values in a buffer of ``code``, or None when one is not of the code's Python type
    (or does not fit): ``pa.array`` then decides, with its own message."""
    kind = _PACKS[code]
    if not checked and not all(type(value) is kind for value in values):
        return None
    try:
        return array.array(code, values)
    except OverflowError:
        return None


def _wrap(packed: array.array, dtype: str, length: int, nulls: Sequence[int]) -> pa.Array:
    import pyarrow as pa

    validity = _validity(length, nulls) if nulls else None
    return pa.Array.from_buffers(ARROW_TYPES(dtype), length, [validity, pa.py_buffer(packed)],
                                 null_count=-1 if nulls else 0)


def _validity(length: int, nulls: Sequence[int]) -> pa.Buffer:
    """Arrow's validity bitmap (bit i set: row i holds a value), least significant bit first."""
    import pyarrow as pa

    bits = bytearray(b"\xff" * ((length + 7) // 8))
    for row in nulls:
        bits[row >> 3] &= ~(1 << (row & 7)) & 0xFF
    return pa.py_buffer(bits)


_EXACT = {"int32": int, "int64": int, "float32": float, "float64": float, "bool": bool,
          "string": str, "bytes": bytes}
"""The dtypes ``plain_column`` takes, each with the one Python type its values must have."""
_ZEROS = {"int32": 0, "int64": 0, "float32": 0.0, "float64": 0.0, "bool": False}


def plain_column(values: Sequence[Any], dtype: str) -> tuple[list[Any], list[int]] | None:
    """``values`` (None: null) as a read's column holds them (the dtype's zero at a null
    fixed-width row) and the null rows, when each value is of the dtype's one Python type and
    fits it exactly (int range, float32 without rounding); else None, and the caller converts
    them by the lossless rule (``conform``), which decides and explains. Row-mode outputs (a
    list per output) take this path: the same values the rule gives, without building them."""
    kind = _EXACT.get(dtype)
    if kind is None:
        return None
    nulls = [row for row, value in enumerate(values) if value is None]
    zero = _ZEROS.get(dtype)
    column = [zero if value is None else value for value in values] if nulls else list(values)
    if not {*map(type, column)} <= {kind, type(None)}:  # one pass in C, no call per value
        return None
    return (column, nulls) if _fits(column, dtype) else None


def _fits(column: list[Any], dtype: str) -> bool:
    """Each value (of the dtype's Python type) is exactly a value of ``dtype``."""
    if not column:
        return True
    if dtype in INT_RANGE:
        return ints_in_range(dtype, column)
    if dtype == "float32":
        return _same_floats(array.array("f", column), column)
    return True


def _same_floats(packed: array.array, values: Sequence[float]) -> bool:
    """Every value came through float32 unchanged (NaN stays NaN)."""
    return all(a == b or (a != a and b != b) for a, b in zip(packed, values, strict=True))


def _converted(values: Sequence[Any], dtype: str, nulls: Sequence[int]) -> pa.Array:
    import pyarrow as pa

    if nulls:
        gaps = set(nulls)
        values = [None if row in gaps else value for row, value in enumerate(values)]
    return pa.array(values, type=ARROW_TYPES(dtype))
