"""Request-context values: what a lookup's caller sends for on-demand features, checked and typed.

Values arrive as Python objects (the library's ``request_data``, or what the server decoded from
the wire) and leave as one Arrow array per field, of the field's declared dtype, for the
transform. The check is strict and the same on both paths, so a value is refused alike in
process and over gRPC: ``granero.value_fits``, the rule join keys follow too (naive timestamps
mean UTC). None is a null value; a field left out is missing, and missing
or mistyped values raise InvalidRequest naming the entity row, the field and the view.
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from granero.errors import InvalidRequest
from granero.on_demand.arrays import ARROW_TYPES, typed_array
from granero.on_demand.rows import arrow_utc
from granero.value_fits import FLOAT32_MAX, INT_RANGE, describe, ints_in_range, value_problem

if TYPE_CHECKING:
    import pyarrow as pa

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""Stands in a request column for an entity row that did not send the field (None is null)."""

_PLAIN = {"int32": int, "int64": int, "float32": float, "float64": float, "bool": bool,
          "string": str, "bytes": bytes, "timestamp": datetime}
"""Per scalar dtype, the one Python type a column usually holds (checked in bulk first)."""

RequestColumns = Mapping[str, Sequence[Any]]
"""Request-context values column-wise: field name -> one value per entity row."""


def request_arrays(
    fields: Sequence[tuple[str, str]], columns: RequestColumns, count: int, view: str
) -> dict[str, pa.Array]:
    """One Arrow array of ``count`` values per ``(name, dtype)`` field of ``view``'s request
    sources; InvalidRequest names the first missing or mistyped value."""
    return {name: _field_array(name, dtype, columns, count, view) for name, dtype in fields}


def request_lists(
    fields: Sequence[tuple[str, str]], columns: RequestColumns, count: int, view: str
) -> dict[str, list[Any]]:
    """``request_arrays``, as a row-mode transform sees the values (what ``to_pylist`` of those
    arrays gives), with the same checks: a column of plain values builds no array."""
    return {name: _field_list(name, dtype, columns, count, view) for name, dtype in fields}


def _field_list(name: str, dtype: str, columns: RequestColumns, count: int, view: str) -> list[Any]:
    column = _given(name, dtype, columns, count, view)
    if column and _column_fits(dtype, column):
        return array.array("f", column).tolist() if dtype == "float32" else list(column)
    if column and dtype == "timestamp" and all(type(v) is datetime and _utc(v) for v in column):
        utc = arrow_utc()
        return [v.replace(tzinfo=utc) for v in column]
    return _field_array(name, dtype, columns, count, view).to_pylist()


def _utc(moment: datetime) -> bool:
    """Naive (UTC by the rule) or at offset zero: Arrow's value is this wall time in UTC."""
    offset = moment.utcoffset()
    return offset is None or not offset


def _given(name: str, dtype: str, columns: RequestColumns, count: int, view: str
           ) -> Sequence[Any] | None:
    """The field's column, checked for presence and length (None: absent from an empty batch)."""
    if name not in columns and count == 0:
        return None
    if name not in columns:
        raise InvalidRequest(f"missing request value {name!r} ({dtype}) of on-demand view "
                             f"{view!r}: send it with every entity row")
    column = columns[name]
    if len(column) != count:
        raise InvalidRequest(f"request value {name!r}: {len(column)} values for {count} entity "
                             "rows; give one per entity row")
    return column


def _field_array(name: str, dtype: str, columns: RequestColumns, count: int, view: str) -> pa.Array:
    import pyarrow as pa

    column = _given(name, dtype, columns, count, view)
    if column is None:
        return pa.array([], type=ARROW_TYPES(dtype))
    if _column_fits(dtype, column):
        return typed_array(column, dtype, checked=True)  # each of the dtype's Python type
    for row, value in enumerate(column):
        _check_value(row, name, dtype, value, view)
    if "float" in dtype:  # ints checked exact: Arrow takes them as floats only past 2**24
        column = [_as_floats(value) for value in column]
    return pa.array(column, type=ARROW_TYPES(dtype))


def _as_floats(value: Any) -> Any:
    if value is None or type(value) is float:
        return value
    if isinstance(value, list | tuple):
        return [_as_floats(item) for item in value]
    return float(value)


def _column_fits(dtype: str, column: Sequence[Any]) -> bool:
    """Whether every value is of ``dtype``'s plain Python type and fits (one pass, no call per
    value); False sends the column through the per-value check, which names the culprit."""
    plain = _PLAIN.get(dtype)
    if plain is None or not all(type(v) is plain for v in column):
        return False
    if dtype in INT_RANGE:
        return ints_in_range(dtype, column)
    if dtype == "float32":
        return all(-FLOAT32_MAX <= v <= FLOAT32_MAX or not math.isfinite(v) for v in column)
    return plain is not datetime


def _check_value(row: int, name: str, dtype: str, value: Any, view: str) -> None:
    if value is MISSING:
        raise InvalidRequest(f"entity row {row}: missing request value {name!r} ({dtype}) of "
                             f"on-demand view {view!r}")
    problem = value_problem(dtype, value)
    if problem is not None:
        raise InvalidRequest(f"entity row {row}: request value {name!r} of on-demand view "
                             f"{view!r} must be {dtype}, got {describe(value)}{problem}")
