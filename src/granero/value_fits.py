"""Whether a Python value is a value of a dtype, the one rule for every value a caller sends:
entity rows' join keys (``online.join_key_checks``) and on-demand request values
(``on_demand.request_values``). Strict, never a lossy cast: integers must be ints in the dtype's
range (never bools), floats take ints only when exactly representable (float32 refuses a float
that overflows it; it rounds the others, as the offline cast rule does), strings, bytes, bools
and timestamps their own types, lists element by element. Pure: no I/O, no heavy import.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from granero.types import list_element

INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
"""Per integer dtype, its smallest and greatest value."""
FLOAT32_MAX = 3.4028234663852886e38
_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,), "string": (str,), "bytes": (bytes, bytearray), "timestamp": (datetime,),
}


def value_problem(dtype: str, value: Any) -> str | None:
    """None when ``value`` (or None, a null) is a valid ``dtype`` value; else a reason to append
    to the caller's message ('' when none helps)."""
    if type(value) is int and dtype in INT_RANGE:  # the hot path: no abc check
        return _in_range(dtype, value)
    if value is None:
        return None
    element = list_element(dtype)
    if element is not None:
        return _list_problem(element, value)
    if dtype in INT_RANGE:
        return "" if isinstance(value, bool) or not isinstance(value, numbers.Integral) else _in_range(dtype, value)
    if dtype in ("float32", "float64"):
        return _float_problem(dtype, value)
    return None if isinstance(value, _EXACT_TYPES[dtype]) else ""


def ints_in_range(dtype: str, ints: Sequence[int]) -> bool:
    """Whether plain ints (already checked to be ``int``) all lie in the integer ``dtype``'s
    range: one ``min`` and one ``max``, the bulk form of ``value_problem``."""
    low, high = INT_RANGE[dtype]
    return not ints or (low <= min(ints) and max(ints) <= high)


def describe(value: Any) -> str:
    """A value as messages name it: its type and repr, cut at 60 characters."""
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _in_range(dtype: str, value: int) -> str | None:
    low, high = INT_RANGE[dtype]
    return None if low <= value <= high else f" (outside the {dtype} range {low}..{high})"


def _list_problem(element: str, value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return ""
    for index, item in enumerate(value):
        problem = value_problem(element, item)
        if problem is not None:
            return f" (element {index}: {describe(item)}{problem})"
    return None


def _float_problem(dtype: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return ""
    if isinstance(value, numbers.Integral):
        exact = float(value) == value if abs(value) < 2**1024 else False
        if dtype == "float32":
            exact = exact and float(_as_float32(float(value))) == value
        return None if exact else f" (the integer is not exactly representable as {dtype})"
    if dtype == "float32" and math.isfinite(value) and abs(value) > FLOAT32_MAX:
        return " (overflows float32)"
    return None


def _as_float32(number: float) -> float:
    import struct

    try:
        return struct.unpack("<f", struct.pack("<f", number))[0]
    except OverflowError:
        return math.inf
