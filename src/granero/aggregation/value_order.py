"""The value order every function sorts, sums and picks in, as int64 keys.

NaN is above every number (a NaN with its sign bit set just below one without) and -0.0 below
0.0, as Spark orders them. Ints and timestamps (microseconds) are their own keys; floats map to
keys by their IEEE bits, so a key comparison is one integer comparison and equal keys mean equal
bits (but for the payload of a NaN).
"""

from __future__ import annotations

import numpy as np

_ALL_BUT_SIGN = 2**63 - 1
_NEGATIVE_NAN_KEY = _ALL_BUT_SIGN - 1


def float_sort_key(values: np.ndarray) -> np.ndarray:
    """float64 values as int64 keys in the value order. The IEEE bits of a negative number, its
    lower 63 flipped, order it; NaNs get the two keys at the top."""
    bits = values.view(np.int64)
    key = np.where(bits < 0, bits ^ np.int64(_ALL_BUT_SIGN), bits)
    nan = np.isnan(values)
    key[nan] = np.where(bits[nan] < 0, _NEGATIVE_NAN_KEY, _ALL_BUT_SIGN)
    return key


def float_of_key(key: np.ndarray) -> np.ndarray:
    """The float64 values of ``float_sort_key`` keys: the same bits, and the NaN keys as NaN
    (negative or positive as their key says)."""
    bits = np.where(key < 0, key ^ np.int64(_ALL_BUT_SIGN), key)
    values = bits.view(np.float64).copy()
    values[key == _ALL_BUT_SIGN] = np.nan
    values[key == _NEGATIVE_NAN_KEY] = -np.nan
    return values
