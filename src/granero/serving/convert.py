"""Wire <-> Python conversion of feature values, entity rows and lookup results.

The server builds one encoder per requested feature from its dtype, once per request shape (the
servicer caches them), so the hot path costs one call per value. Timestamps travel as UTC
microseconds since the Unix epoch; a missing ``Value`` kind means null, and a list's null
elements travel as positions beside the values, so every value the store holds has a wire form.

Entity rows are decoded here, not judged: ``granero.online.lookup`` checks every join key
against its dtype, so a mistyped key fails with the same message in-process and over gRPC. An
``int32_val`` and an ``int64_val`` both decode to an int; the lookup checks the range. Decoding
itself refuses only what no Python value stands for (``decode_value``), naming the field.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from granero.errors import GraneroError, InvalidRequest
from granero.online.encoding import from_micros, to_micros
from granero.online.lookup import FeatureValue, OnlineResult, Status, ViewRead
from granero.serving.v1 import value_pb2
from granero.serving.v1.serving_pb2 import (
    EntityRow,
    FeatureRow,
    FieldStatus,
    GetOnlineFeaturesResponse,
)
from granero.serving.v1.value_pb2 import Value
from granero.types import list_element, proto_field

Encoder = Callable[[Any], Value]
Writer = tuple[str, Encoder | None]
"""How to append a non-null value: the Value field to set, or (None for plain scalars) the
encoder whose Value is copied in."""

_NULL = Value()
_LIST_MESSAGES = {
    "int32": value_pb2.Int32List, "int64": value_pb2.Int64List, "float32": value_pb2.FloatList,
    "float64": value_pb2.DoubleList, "bool": value_pb2.BoolList, "string": value_pb2.StringList,
    "bytes": value_pb2.BytesList, "timestamp": value_pb2.Int64List,
}
_ZERO = {"int32": 0, "int64": 0, "float32": 0.0, "float64": 0.0, "bool": False, "string": "",
         "bytes": b"", "timestamp": 0}
"""What a list carries in place of a null element (its position says it is null)."""
_CODE_OF_STATUS = {status: FieldStatus.Value(status.value) for status in Status}
_STATUS_OF_CODE = {code: status for status, code in _CODE_OF_STATUS.items()}
_PRESENT, _NULL_VALUE = _CODE_OF_STATUS[Status.PRESENT], _CODE_OF_STATUS[Status.NULL_VALUE]


# -- feature values -------------------------------------------------------------------------------


def value_encoder(dtype: str) -> Encoder:
    """A function turning a Python value of ``dtype`` (or None) into a wire Value."""
    field, element = proto_field(dtype), list_element(dtype)
    if element is not None:
        return _list_encoder(field, element)
    if dtype == "timestamp":
        return lambda value: _NULL if value is None else Value(timestamp_val=to_micros(value))
    return lambda value: _NULL if value is None else Value(**{field: value})


_PLAIN_FIELDS = frozenset(
    {"int32_val", "int64_val", "float_val", "double_val", "bool_val", "string_val", "bytes_val"})


def value_writer(dtype: str) -> Writer:
    """Like ``value_encoder`` but for appending in place: ``setattr(values.add(), field, v)``
    builds the Value inside the response, a third of the cost of building one and copying it."""
    field = proto_field(dtype)
    return (field, None) if field in _PLAIN_FIELDS else (field, value_encoder(dtype))


def _list_encoder(field: str, element: str) -> Encoder:
    message, zero = _LIST_MESSAGES[element], _ZERO[element]
    convert = to_micros if element == "timestamp" else None

    def encode(value: Any) -> Value:
        if value is None:
            return _NULL
        nulls = [i for i, v in enumerate(value) if v is None] if None in value else []
        if nulls or convert:
            value = [zero if v is None else convert(v) if convert else v for v in value]
        return Value(**{field: message(val=value, null_positions=nulls)})

    return encode


class _Malformed(ValueError):
    """A wire Value that no Python value stands for; the caller names the field."""


_MOMENTS = (to_micros(datetime.min.replace(tzinfo=UTC)), to_micros(datetime.max.replace(tzinfo=UTC)))
"""The timestamps a datetime can hold, in microseconds (years 1 to 9999)."""


def decode_value(value: Value, field: str = "value") -> Any:
    """The Python value a wire Value carries (None when no kind is set).

    Every Value a client can build either decodes or raises InvalidRequest naming ``field``
    (a timestamp outside the datetime range, a null position past the end of its list).
    """
    try:
        return _decoded(value)
    except _Malformed as problem:
        raise InvalidRequest(f"{field}: {problem}") from None


def _decoded(value: Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    raw = getattr(value, kind)
    if kind == "timestamp_val":
        return _moment(raw)
    if not kind.endswith("_list_val"):
        return raw
    items = [_moment(v) for v in raw.val] if kind == "timestamp_list_val" else list(raw.val)
    for position in raw.null_positions:
        if position >= len(items):
            raise _Malformed(f"null position {position} is past the end of its "
                             f"{len(items)}-element {kind}")
        items[position] = None
    return items


def _moment(micros: int) -> datetime:
    low, high = _MOMENTS
    if not low <= micros <= high:
        raise _Malformed(f"timestamp {micros} (microseconds since the epoch) is outside the "
                         "range of years 1 to 9999")
    return from_micros(micros)


# -- entity rows ----------------------------------------------------------------------------------


def decode_entity_rows(rows: Sequence[EntityRow]) -> list[dict[str, Any]]:
    """Entity rows as Python dicts (the lookup validates them against the join key dtypes);
    InvalidRequest names the entity row and join key of a Value that does not decode."""
    decoded: list[dict[str, Any]] = []
    try:
        for row in rows:
            decoded.append({key: _decoded(value) for key, value in row.keys.items()})
    except _Malformed:
        index = len(decoded)
        for key, value in rows[index].keys.items():
            decode_value(value, f"entity row {index}, join key {key!r}")
        raise
    return decoded


def encode_key(value: Any) -> Value:
    """A wire Value for a Python join key value (the server checks it against the key's dtype)."""
    if isinstance(value, bool):
        return Value(bool_val=value)
    if isinstance(value, numbers.Integral):
        return Value(int64_val=int(value))
    if isinstance(value, str):
        return Value(string_val=value)
    if isinstance(value, bytes | bytearray):
        return Value(bytes_val=bytes(value))
    if isinstance(value, datetime):
        return Value(timestamp_val=to_micros(value))
    raise InvalidRequest(f"join key value {value!r} of type {type(value).__name__} cannot be sent; "
                         "use int, str, bytes, bool or datetime")


def encode_entity_rows(rows: Iterable[Mapping[str, Any]]) -> list[EntityRow]:
    return [EntityRow(keys={k: encode_key(v) for k, v in row.items()}) for row in rows]


# -- lookup results -------------------------------------------------------------------------------


def encode_reads(
    reads: list[list[ViewRead]], names: list[str], writers: list[list[Writer]]
) -> tuple[GetOnlineFeaturesResponse, Counter[int]]:
    """The wire response for ``read_views``' answer (the server's hot path: no FeatureValue, no
    datetime), and how many values had each status code. ``writers``: per view, per feature."""
    response = GetOnlineFeaturesResponse(feature_names=names)
    statuses: list[int] = []
    try:
        for row in reads:
            _encode_reads_row(response.rows.add(), row, writers, statuses)
    except (TypeError, ValueError):
        raise _unencodable_read(reads, names, writers) from None
    counts = Counter({code: statuses.count(code) for code in _STATUS_OF_CODE})
    return response, +counts


def _encode_reads_row(
    out: FeatureRow, row: list[ViewRead], writers: list[list[Writer]], all_statuses: list[int]
) -> None:
    add, statuses, stamps = out.values.add, out.statuses, out.event_timestamps
    for read, view_writers in zip(row, writers, strict=True):
        count = len(view_writers)
        stamps.extend([read.event_micros or 0] * count)
        if read.values is None:
            out.values.extend([_NULL] * count)
            codes = [_CODE_OF_STATUS[read.status]] * count
        else:
            codes = [_PRESENT if v is not None else _NULL_VALUE for v in read.values]
            for (field, encode), value in zip(view_writers, read.values, strict=True):
                if value is None:
                    add()
                elif encode is None:
                    setattr(add(), field, value)
                else:
                    add().CopyFrom(encode(value))
        statuses.extend(codes)
        all_statuses.extend(codes)


def _unencodable_read(
    reads: list[list[ViewRead]], names: list[str], writers: list[list[Writer]]
) -> GraneroError:
    """Find the value that failed to encode (slow path, errors only) and name it."""
    flat = [w for view_writers in writers for w in view_writers]
    for index, row in enumerate(reads):
        values = [v for read, ws in zip(row, writers, strict=True)
                  for v in (read.values or [None] * len(ws))]
        for name, (field, encode), value in zip(names, flat, values, strict=True):
            try:
                if value is not None:
                    setattr(Value(), field, value) if encode is None else encode(value)
            except (TypeError, ValueError) as error:
                return GraneroError(f"feature {name!r} of entity row {index}: value "
                                    f"{value!r} cannot be sent as its dtype: {error}")
    return GraneroError("a feature value cannot be encoded")


def decode_result(response: GetOnlineFeaturesResponse) -> OnlineResult:
    """The library's OnlineResult for a ROWS response."""
    rows = [
        [FeatureValue(decode_value(v), _STATUS_OF_CODE[s], from_micros(t) if t else None)
         for v, s, t in zip(row.values, row.statuses, row.event_timestamps, strict=True)]
        for row in response.rows
    ]
    return OnlineResult.from_rows(list(response.feature_names), rows)


def status_name(code: int) -> str:
    return FieldStatus.Name(code)
