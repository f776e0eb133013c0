"""Entity rows' join keys checked against their declared dtypes before any Redis read: a value
that does not fit (``granero.value_fits``, the rule request values follow too) or a null is an
InvalidRequest naming the entity row, the key and the view (never a lossy cast, never a server
error). Columns of the common plain types pass in bulk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from granero.errors import InvalidRequest
from granero.value_fits import INT_RANGE, ints_in_range, value_problem

EntityColumns = Mapping[str, Sequence[Any]]
"""Join key name -> one value per entity row."""


def checked_key_value(index: int, row: Mapping[str, Any], view: str, key: str, dtype: str) -> Any:
    """``row[key]`` when it is a valid ``dtype`` join key value, else InvalidRequest."""
    if type(row) is not dict and not isinstance(row, Mapping):  # dict: skips the abc check
        raise InvalidRequest(
            f"entity row {index}: must map join key names to values, got {type(row).__name__}"
        )
    if key not in row:
        raise InvalidRequest(f"entity row {index}: missing join key {key!r} of view {view!r}")
    value = row[key]
    problem = _type_problem(dtype, value)
    if problem is not None:
        raise InvalidRequest(
            f"entity row {index}: join key {key!r} of view {view!r} must be {dtype}, "
            f"got {_describe(value)}{problem}"
        )
    return value


def checked_key_column(columns: EntityColumns, view: str, key: str, dtype: str) -> Sequence[Any]:
    """``columns[key]`` when every value is a valid ``dtype`` join key value, else InvalidRequest
    naming the first bad entity row (the message ``checked_key_value`` gives)."""
    if key not in columns:
        raise InvalidRequest(f"entity columns: missing join key {key!r} of view {view!r}")
    column = columns[key]
    if not column_fits(dtype, column):
        for index, value in enumerate(column):
            checked_key_value(index, {key: value}, view, key, dtype)
    return column


def column_fits(dtype: str, column: Sequence[Any]) -> bool:
    """Whether every value of ``column`` is a valid ``dtype`` join key value (bulk where it can)."""
    if dtype in INT_RANGE:  # plain ints checked in bulk, without a call per value
        return all(type(v) is int for v in column) and ints_in_range(dtype, column)
    exact = _EXACT_KEY_TYPES.get(dtype)
    if exact is not None and all(type(v) is exact for v in column):
        return True
    return all(_type_problem(dtype, value) is None for value in column)


_EXACT_KEY_TYPES = {"string": str, "bytes": bytes, "bool": bool}
"""The common type of each such key: a column of it passes without a call per value."""


def _type_problem(dtype: str, value: Any) -> str | None:
    """None when ``value`` fits ``dtype``; else a suffix for the message ('' when none helps).
    A key is never null."""
    return "" if value is None else value_problem(dtype, value)


def _describe(value: Any) -> str:
    """The value in full: the server shortens a long message itself, saying how much it cut."""
    return "None" if value is None else f"{type(value).__name__} {value!r}"
