"""The ROWS layout (the default, what clients in other languages get), built from ``read_columns``.

A FeatureRow carries a ``Value`` message per value; building those one by one in Python costs
about half a microsecond each, and reading rows one by one costs as much again. So the server
reads column-wise, as for COLUMNS, and writes the rows' *wire bytes* directly: each feature's
column becomes its values' encoded ``Value`` entries in one pass (numpy for floats, a table for
bools and nulls, a short loop for varints and text), each row's parts are joined once, and the
response parses them in C. The message is the one ``convert.encode_reads`` builds value by value
(tests compare the two on random data of every dtype).

Wire facts used here: a FeatureRow is ``values = 1`` (one length-delimited Value each),
``statuses = 2`` and ``event_timestamps = 3`` (packed varints); a Value's oneof field is written
even when it holds its default (0, "", false), and an empty Value (no kind) means null.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Any

from granero.errors import GraneroError
from granero.online.lookup import ROW_BY_ROW_BELOW, ViewColumns
from granero.serving.convert import value_encoder
from granero.serving.v1.serving_pb2 import FieldStatus, GetOnlineFeaturesResponse
from granero.types import list_element, proto_field

EntryColumn = Callable[[list[Any], list[int]], list[bytes]]
"""A feature's column (``ViewColumns.values``) and its missing rows -> each row's encoded
``FeatureRow.values`` entry."""

_NULL_ENTRY = b"\n\x00"
_VIEW_CODES = [FieldStatus.PRESENT, FieldStatus.NOT_FOUND, FieldStatus.OUTSIDE_MAX_AGE]
_NULL_CODE = FieldStatus.NULL_VALUE
_ALL_CODES = (*_VIEW_CODES, _NULL_CODE)
_VALUE_TAGS = {"int32_val": 0x08, "int64_val": 0x10, "float_val": 0x1D, "double_val": 0x21,
               "bool_val": 0x28, "string_val": 0x32, "bytes_val": 0x3A, "timestamp_val": 0x40}
"""A Value field -> its tag byte (field number << 3 | wire type)."""
_ENCODING_ERRORS = (TypeError, ValueError, AttributeError, OverflowError, KeyError, IndexError,
                    struct.error)
"""What encoding a value of the wrong type or range raises (then the value is named)."""
_INT_RANGES = {"int32_val": (-(2**31), 2**31 - 1), "int64_val": (-(2**63), 2**63 - 1),
               "timestamp_val": (-(2**63), 2**63 - 1)}


def varint(number: int) -> bytes:
    """Protobuf's base-128 varint; negative numbers as their 64-bit two's complement."""
    if 0 <= number < 0x80:
        return _SMALL[number]
    number &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


_SMALL = [bytes((n,)) for n in range(0x80)]
_cached_varint = functools.lru_cache(maxsize=4096)(varint)
"""For what repeats from row to row: event times (one materialization window stamps many rows)
and the lengths of rows and their packed fields."""


# -- one feature's column -> its entries -----------------------------------------------------------


@functools.cache
def entry_column(dtype: str) -> EntryColumn:
    """How to encode a column of ``dtype`` (one per dtype, shared by every request)."""
    field = proto_field(dtype)
    if list_element(dtype) is not None:
        return _per_value(_list_entry(value_encoder(dtype)))
    if field in ("double_val", "float_val"):
        return _float_column(field)
    if field == "bool_val":
        return _per_value({True: b"\n\x02\x28\x01", False: b"\n\x02\x28\x00"}.__getitem__)
    if field in _INT_RANGES:
        return _int_column(field)
    return _per_value(_text_entry(field))


def _per_value(entry: Callable[[Any], bytes]) -> EntryColumn:
    def encode(values: list[Any], missing: list[int]) -> list[bytes]:
        if not missing:
            return [entry(value) for value in values]
        gaps = set(missing)
        return [_NULL_ENTRY if row in gaps else entry(value) for row, value in enumerate(values)]

    return encode


def _float_column(field: str) -> EntryColumn:
    """Fixed width: a struct per value for a few rows, one numpy record array for many."""
    import numpy as np

    kind = "<d" if field == "double_val" else "<f"
    head = bytes((0x0A, 1 + struct.calcsize(kind), _VALUE_TAGS[field]))
    pack = struct.Struct(kind).pack
    records = np.dtype([("head", "S3"), ("value", kind)])

    def encode(values: list[Any], missing: list[int]) -> list[bytes]:
        if len(values) < ROW_BY_ROW_BELOW:
            entries = [head + pack(value) for value in values]
        else:
            numbers = np.asarray(values)
            if numbers.dtype.kind not in "fiub":  # numpy would parse "1.5" silently
                raise TypeError(f"not a number column ({numbers.dtype})")
            packed = np.empty(len(values), records)
            packed["head"], packed["value"] = head, numbers
            entries = packed.view(np.dtype((np.void, records.itemsize))).tolist()
        for row in missing:
            entries[row] = _NULL_ENTRY
        return entries

    return encode


def _int_column(field: str) -> EntryColumn:
    low, high = _INT_RANGES[field]
    tag = bytes((_VALUE_TAGS[field],))
    entries = _per_value(lambda value: _entry(tag + varint(value)))

    def encode(values: list[Any], missing: list[int]) -> list[bytes]:
        if values and (min(values) < low or max(values) > high):
            raise ValueError(f"out of range [{low}, {high}]")
        return entries(values, missing)

    return encode


def _text_entry(field: str) -> Callable[[Any], bytes]:
    tag = bytes((_VALUE_TAGS[field],))
    if field == "string_val":
        return lambda text: _entry(tag + _delimited(text.encode()))
    return lambda data: _entry(tag + _delimited(data if type(data) is bytes else
                                                bytes(memoryview(data))))


def _list_entry(encode: Callable[[Any], Any]) -> Callable[[Any], bytes]:
    return lambda value: _entry(encode(value).SerializeToString())


def _delimited(payload: bytes) -> bytes:
    return varint(len(payload)) + payload


def _entry(value: bytes) -> bytes:
    """An encoded Value as a ``FeatureRow.values`` entry (field 1, length-delimited)."""
    return b"\n" + varint(len(value)) + value


# -- the response ----------------------------------------------------------------------------------


def encode_rows(
    names: list[str], reads: Sequence[ViewColumns], dtypes: Sequence[Sequence[str]]
) -> tuple[GetOnlineFeaturesResponse, dict[int, int]]:
    """The ROWS response for ``read_columns``' answer, and how many values had each status
    code. ``dtypes``: per view, per requested feature."""
    entries: list[list[bytes]] = []
    for read, view_dtypes in zip(reads, dtypes, strict=True):
        view_names = names[len(entries):len(entries) + len(view_dtypes)]
        entries += _view_entries(view_names, read, view_dtypes)
    codes = [b"".join(c) for c in zip(*[_view_statuses(r) for r in reads], strict=True)]
    stamps = [b"".join(t) for t in zip(*[_view_stamps(r) for r in reads], strict=True)]
    by_row = zip(zip(*entries, strict=True), codes, stamps, strict=True)
    wire = [_name(name) for name in names] + [_row(*row) for row in by_row]
    every = b"".join(codes)
    counts = {code: n for code in _ALL_CODES if (n := every.count(code))}
    return GetOnlineFeaturesResponse.FromString(b"".join(wire)), counts


def _name(name: str) -> bytes:
    """A ``feature_names`` entry (field 1 of the response)."""
    return b"\n" + _delimited(name.encode())


def _view_entries(names: list[str], read: ViewColumns, dtypes: Sequence[str]) -> list[list[bytes]]:
    """Per feature of one view, each row's entry; GraneroError names a value that cannot go."""
    out = []
    for name, dtype, values, missing in zip(names, dtypes, read.values, read.missing, strict=True):
        try:
            column = entry_column(dtype)(values, missing)
        except _ENCODING_ERRORS as error:
            raise _unencodable(name, dtype, values, missing, error) from None
        out.append(column)
    return out


def _unencodable(name: str, dtype: str, values: list[Any], missing: list[int],
                 error: Exception) -> GraneroError:
    gaps = set(missing)
    for row, value in enumerate(values):
        if row in gaps:
            continue
        try:
            entry_column(dtype)([value], [])
        except _ENCODING_ERRORS as problem:
            return GraneroError(f"feature {name!r} of entity row {row}: value {value!r} cannot "
                                f"be sent as its dtype {dtype}: {problem}")
    return GraneroError(f"feature {name!r} cannot be sent as its dtype {dtype}: {error}")


def _view_statuses(read: ViewColumns) -> list[bytes]:
    """Per row, the packed status codes of this view's features (NULL_VALUE where a PRESENT
    row holds null)."""
    count = len(read.values)
    codes = [_run(_VIEW_CODES[status], count) for status in read.status]
    nulls: dict[int, list[int]] = {}
    for feature, missing in enumerate(read.missing):
        for row in missing:
            if read.status[row] == 0:
                nulls.setdefault(row, []).append(feature)
    for row, features in nulls.items():
        row_codes = bytearray(codes[row])
        for feature in features:
            row_codes[feature] = _NULL_CODE
        codes[row] = bytes(row_codes)
    return codes


@functools.lru_cache(maxsize=1024)
def _run(code: int, count: int) -> bytes:
    return bytes((code,)) * count


def _view_stamps(read: ViewColumns) -> list[bytes]:
    """Per row, this view's event time once per feature, as packed varints."""
    count = len(read.values)
    return [_cached_varint(micros) * count for micros in read.event_micros]


def _row(values: tuple[bytes, ...], codes: bytes, times: bytes) -> bytes:
    body = b"".join((*values, b"\x12", _cached_varint(len(codes)), codes,
                     b"\x1a", _cached_varint(len(times)), times))
    return b"\x12" + _cached_varint(len(body)) + body
