"""Request-context values on the wire: ``EntityRow.request_values`` and ``request_columns``.

Decoding only turns wire Values into Python values, column-wise (field -> one value per entity
row, ``MISSING`` where a row left the field out); whether they fit the fields' dtypes is judged
by ``granero.on_demand.request_values``, the check the library applies to ``request_data``, so a
bad value fails alike in process and over gRPC. The client's encoding is here too.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from granero.errors import InvalidRequest
from granero.on_demand.request_values import MISSING
from granero.online.encoding import to_micros
from granero.serving.convert import decode_value
from granero.serving.v1.serving_pb2 import EntityRow, GetOnlineFeaturesRequest, RequestColumn
from granero.serving.v1.value_pb2 import Value

if TYPE_CHECKING:
    from granero.serving.limits import ServingLimits

# -- server: decoding -----------------------------------------------------------------------------


def decode_request_rows(rows: Sequence[EntityRow]) -> dict[str, list[Any]]:
    """The entity rows' request values as columns (``MISSING`` where a row lacks a field)."""
    names = list(dict.fromkeys(name for row in rows for name in row.request_values))
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, row in enumerate(rows):
        given = row.request_values
        for name in names:
            if name in given:
                field = f"entity row {index}, request value {name!r}"
                columns[name].append(decode_value(given[name], field))
            else:
                columns[name].append(MISSING)
    return columns


def check_column_sizes(columns: Mapping[str, RequestColumn], label: str, limits: ServingLimits,
                       setting: str) -> None:
    """Each column's name and value count within ``limits`` (``setting`` names the count's
    limit), read before anything is decoded."""
    limit = getattr(limits, setting)
    for name, column in columns.items():
        limits.check_name(f"{label} key", name)
        kind = column.values.WhichOneof("kind")
        packed = len(getattr(column.values, kind).val) if kind and kind.endswith("_list_val") else 0
        size = max(len(column.list_values), packed)
        if size > limit:
            raise InvalidRequest(f"{label}[{name!r}] holds {size} values, over {setting} {limit}")


def decode_request_columns(columns: Mapping[str, RequestColumn],
                           label: str = "request_columns") -> dict[str, list[Any]]:
    """``request_columns`` (or the message field ``label``, e.g. a push's ``columns``) as Python
    lists: a packed list Value, or a Value per entity row."""
    decoded = {}
    for name, column in columns.items():
        kind = column.values.WhichOneof("kind")
        field = f"{label}[{name!r}]"
        if kind is not None and column.list_values:
            raise InvalidRequest(f"{field}: give values or list_values, not both")
        if kind is None:
            decoded[name] = [decode_value(v, f"{field}.list_values[{i}]")
                             for i, v in enumerate(column.list_values)]
        elif not kind.endswith("_list_val"):
            raise InvalidRequest(f"{field}.values must be a list Value (double_list_val, "
                                 f"string_list_val...) with one element per entity row, got {kind}")
        else:
            decoded[name] = decode_value(column.values, f"{field}.values")
    return decoded


# -- client: encoding -----------------------------------------------------------------------------

_SCALAR_FIELDS: dict[type, str] = {bool: "bool_val", int: "int64_val", float: "double_val",
                                   str: "string_val", bytes: "bytes_val"}
_LIST_FIELDS: dict[type, str] = {bool: "bool_list_val", int: "int64_list_val",
                                 float: "double_list_val", str: "string_list_val",
                                 bytes: "bytes_list_val"}


def encode_request_value(value: Any) -> Value:
    """A wire Value for a Python request value (the server checks it against the field's
    dtype): ints travel as int64, floats as double, datetimes as timestamps, lists as lists."""
    if value is None:
        return Value()
    if isinstance(value, list | tuple):
        return _encode_list(list(value))
    field = _SCALAR_FIELDS.get(type(value))
    if field is not None:
        return Value(**{field: value})
    if isinstance(value, datetime):
        return Value(timestamp_val=to_micros(value))
    if isinstance(value, numbers.Integral):  # numpy ints and the like, exactly
        return Value(int64_val=int(value))
    if isinstance(value, numbers.Real):
        return Value(double_val=float(value))
    raise InvalidRequest(f"request value {value!r} of type {type(value).__name__} cannot be sent; "
                         "use int, float, str, bytes, bool, datetime or a list of one of them")


def _encode_list(items: list[Any]) -> Value:
    kinds = {type(v) for v in items if v is not None}
    nulls = [i for i, v in enumerate(items) if v is None]
    if not kinds:
        return Value(double_list_val={"null_positions": nulls, "val": [0.0] * len(items)})
    kind = next(iter(kinds))
    if len(kinds) == 1 and issubclass(kind, datetime):
        values = [0 if v is None else to_micros(v) for v in items]
        return Value(timestamp_list_val={"val": values, "null_positions": nulls})
    if len(kinds) != 1 or kind not in _LIST_FIELDS:
        names = sorted(k.__name__ for k in kinds)
        raise InvalidRequest(f"request value list mixes or holds unsendable types {names}")
    zero = kind()
    values = [zero if v is None else v for v in items]
    return Value(**{_LIST_FIELDS[kind]: {"val": values, "null_positions": nulls}})


def encode_request_columns(columns: Mapping[str, Sequence[Any]]) -> dict[str, RequestColumn]:
    """Request values column-wise, one RequestColumn per field: scalars packed into one list
    Value when they share a type, else (lists, mixed types) a Value per entity row."""
    encoded = {}
    for name, values in columns.items():
        kinds = {type(v) for v in values if v is not None}
        packable = len(kinds) == 1 and (next(iter(kinds)) in _LIST_FIELDS
                                        or issubclass(next(iter(kinds)), datetime))
        if packable:
            encoded[name] = RequestColumn(values=_encode_list(list(values)))
        else:
            encoded[name] = RequestColumn(list_values=[encode_request_value(v) for v in values])
    return encoded


def set_request_values(request: GetOnlineFeaturesRequest, request_data: Any) -> None:
    """Put ``request_data`` (field -> values, or a dict per entity row) into ``request``: in each
    entity row when it sends rows, else as ``request_columns`` beside its key columns."""
    from granero.online.on_demand import request_columns

    rows = request.entities
    count = len(rows) if rows else _column_count(request, request_data)
    columns = request_columns(request_data, count)
    if not rows:
        for name, column in encode_request_columns(_complete(columns)).items():
            request.request_columns[name].CopyFrom(column)
        return
    for name, values in columns.items():
        if len(values) != count:
            raise InvalidRequest(f"request value {name!r}: {len(values)} values for {count} "
                                 "entity rows; give one per entity row")
        for row, value in zip(rows, values, strict=True):
            if value is not MISSING:
                row.request_values[name].CopyFrom(encode_request_value(value))


def _column_count(request: GetOnlineFeaturesRequest, request_data: Any) -> int:
    for column in request.entity_columns.values():
        kind = column.WhichOneof("kind")
        return len(getattr(column, kind).val) if kind else 0
    return len(request_data) if not isinstance(request_data, Mapping) else 0


def _complete(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Columns to send packed: a row that left a field out is named here, as the server would."""
    for name, values in columns.items():
        if MISSING in values:
            raise InvalidRequest(f"entity row {values.index(MISSING)}: missing request value "
                                 f"{name!r}")
    return columns
