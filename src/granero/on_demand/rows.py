"""Row mode on the request path: Python values straight into the row dicts, no Arrow round trip.

A row-mode transform sees each input as a Python value. Training gets those from its Arrow batch
(``to_pylist``); a request already holds Python values (decoded from the store, or sent with the
request), so building Arrow arrays only to read them back costs a few microseconds per input for
nothing. ``feature_values`` turns a read's column into the values ``to_pylist`` of its Arrow
array (``arrays.typed_array``) gives, and ``request_values.request_lists`` does the same for
request values, so a row transform sees the same values on both paths.

Guarantee (``tests/on_demand/test_rows.py``, against the Arrow path as the oracle, every dtype,
nulls, 0/1/many rows): ``feature_values(values, dtype, missing)`` equals
``typed_array(values, dtype, missing).to_pylist()`` value by value, type by type (timestamps are
datetimes in Arrow's UTC zone object).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from granero.types import list_element

_AS_IS = frozenset({"int32", "int64", "float32", "float64", "bool", "string", "bytes"})
"""Dtypes whose decoded Python values are already what Arrow's ``to_pylist`` gives (a float32
feature is decoded from its 4 stored bytes, so it is exactly a float32 value)."""


def feature_values(values: Sequence[Any], dtype: str, missing: Sequence[int]) -> list[Any]:
    """A read's column (``ViewColumns``: 0 at missing fixed-width rows, timestamps as int64
    micros) as a row transform sees it: None at the ``missing`` rows."""
    if dtype in _AS_IS:
        column = list(values)
    elif dtype == "timestamp":
        column = [_moment(micros) for micros in values]
    else:
        column = [None if items is None else list_values(items, list_element(dtype))
                  for items in values]
    for row in missing:
        column[row] = None
    return column


def list_values(items: Sequence[Any], element: str | None) -> list[Any]:
    """A list value's elements as Arrow gives them (its timestamps in Arrow's UTC zone)."""
    if element != "timestamp":
        return list(items)
    return [None if item is None else item.astimezone(arrow_utc()) for item in items]


def _moment(micros: int) -> datetime:
    return _epoch() + timedelta(microseconds=micros)


@functools.cache
def arrow_utc() -> tzinfo:
    """The UTC zone object Arrow puts on the datetimes it hands out (a row transform sees the
    same object whichever path built its row)."""
    import pyarrow as pa

    return pa.array([0], pa.timestamp("us", tz="UTC")).to_pylist()[0].tzinfo


@functools.cache
def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=arrow_utc())
