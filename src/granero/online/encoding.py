"""The bytes Granero keeps in Redis for a row: the value format, encoded column-wise and decoded
row by row or in batches. Pure: no I/O. The keys are ``online.entity_keys``'s, times and Arrow
columns ``online.arrow_columns``'s (both re-exported here, where callers have always found them);
an aggregate view's members wrap these values (``online.aggregate_encoding``).

Values (format version 1, little-endian)
----------------------------------------
::

    offset 0   u8      format version
           1   i64     event_timestamp, microseconds         } the row's version, compared by
           9   i64     created_timestamp, or INT64_MIN=null  } the write-if-newer script
          17   u32     schema id: crc32 of the view's features and dtypes
          21   bitmap  ceil(F/8) bytes, bit i set when feature i is null
               slots   per feature in declared order: int32 i4, int64 i8, float32 f4, float64 f8,
                       bool u1, timestamp i8 (micros); string/bytes/list: u32 payload length
               payloads of the variable-width features, in declared order

Bytes 1-16 keep this meaning in every future version: the Lua script reads the version there.
A null created_timestamp is INT64_MIN so it sorts lowest, as the point-in-time rule requires.
A value whose schema id differs from the view's current one (a feature was added since it was
written) is not decoded; it reads as absent until the view is synced again.

Why not protobuf: encoding means building one message per value in Python (measured ~80k rows/s
for 20 doubles, and Feast-style conversion ~4.4k rows/s), while this layout is filled column-wise
by numpy (~1.4M rows/s) and one ``struct.unpack_from`` decodes every fixed-width feature of a
row. A list payload is a u32 count, a null bitmap of ceil(count/8) bytes, then the elements
(fixed-width, or u32 lengths followed by the bytes for string/bytes elements).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from granero.online.arrow_columns import (
    EPOCH,
    as_micros,
    binary,
    expire_at_ms,
    fixed_numpy,
    from_micros,
    micros_column,
    null_bitmaps,
    to_micros,
)
from granero.online.entity_keys import encode_entity_key, encode_entity_keys, encode_single_keys, key_prefix
from granero.types import list_element

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

FORMAT_VERSION = 1
NULL_CREATED = -(2**63)
"""created_timestamp of a row whose source has none: lower than any real time."""

_HEADER = struct.Struct("<BqqI")
_FIXED_FORMAT = {
    "int32": "i",
    "int64": "q",
    "float32": "f",
    "float64": "d",
    "bool": "?",
    "timestamp": "q",
}
_NUMPY_FORMAT = {
    "int32": "<i4",
    "int64": "<i8",
    "float32": "<f4",
    "float64": "<f8",
    "bool": "u1",
    "timestamp": "<i8",
}
__all__ = [  # the names other modules import from here, the moved ones included
    "EPOCH", "FORMAT_VERSION", "NULL_CREATED", "StoredBatch", "StoredRow", "ValueCodec", "batch_values",
    "decode_batch", "encode_entity_key", "encode_entity_keys", "encode_list", "encode_single_keys",
    "expire_at_ms", "from_micros", "key_prefix", "micros_column", "read_version", "to_micros", "value_codec",
]


# -- values ----------------------------------------------------------------------------------------


class StoredRow(NamedTuple):
    """A decoded value: the row's version and the requested features (None when null)."""

    event_micros: int
    created_micros: int | None
    values: list[Any]


@dataclass(frozen=True)
class ValueCodec:
    """Encodes and decodes the values of one feature view (features in declared order)."""

    features: tuple[tuple[str, str], ...]
    """(name, dtype) per feature."""
    domain: str = ""
    """Hashed into the schema id too: what else the values mean depends on (an aggregate view's
    hop and span, granero.online.aggregate_encoding); empty for plain views."""
    schema_id: int = field(init=False, compare=False)
    _struct: struct.Struct = field(init=False, repr=False, compare=False)
    _var_slots: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _plain: frozenset[int] = field(init=False, repr=False, compare=False)
    _pickers: dict[tuple[int, ...], Any] = field(init=False, repr=False, compare=False)
    """Per ``wanted`` (all plain): picks its values out of the unpacked fields in one C call."""

    def __post_init__(self) -> None:
        text = self.domain + ",".join(f"{name}:{dtype}" for name, dtype in self.features)
        slots = "".join(_FIXED_FORMAT.get(dtype, "I") for _, dtype in self.features)
        object.__setattr__(self, "schema_id", zlib.crc32(text.encode()))
        object.__setattr__(self, "_struct", struct.Struct(f"<BqqI{self.bitmap_size}s{slots}"))
        var = tuple(i for i, (_, dtype) in enumerate(self.features) if dtype not in _FIXED_FORMAT)
        object.__setattr__(self, "_var_slots", var)
        plain = (
            i for i, (_, d) in enumerate(self.features) if d in _FIXED_FORMAT and d != "timestamp"
        )
        object.__setattr__(self, "_plain", frozenset(plain))
        object.__setattr__(self, "_pickers", {})

    @property
    def bitmap_size(self) -> int:
        return (len(self.features) + 7) // 8

    def decode(self, data: bytes, wanted: Sequence[int]) -> StoredRow | None:
        """The features at positions ``wanted``; None when written under another schema."""
        if data[0] != FORMAT_VERSION:
            raise ValueError(
                f"online value has format version {data[0]}, this Granero reads {FORMAT_VERSION}"
            )
        if int.from_bytes(data[17:21], "little") != self.schema_id:
            return None
        fields = self._struct.unpack_from(data)
        values = self._values(data, fields[5:], fields[4], wanted)
        created = None if fields[2] == NULL_CREATED else fields[2]
        return StoredRow(fields[1], created, values)

    def _values(self, data: bytes, slots: tuple, nulls: bytes, wanted: Sequence[int]) -> list[Any]:
        if not any(nulls):  # the hot path of lookups: numbers and bools straight from the slots
            pick = self._picker(wanted)
            if pick is not None:
                return pick(slots)
            return [slots[i] if i in self._plain else self._value(data, slots, i) for i in wanted]
        return [
            None if nulls[i >> 3] >> (i & 7) & 1 else self._value(data, slots, i) for i in wanted
        ]

    def _picker(self, wanted: Sequence[int]) -> Any:
        """A function of the slots returning the wanted values as a list, when all are plain
        numbers or bools (None otherwise); built once per ``wanted``."""
        key = tuple(wanted)
        if key not in self._pickers:
            picker = None
            if key and all(i in self._plain for i in key):
                get = itemgetter(*key)
                picker = (lambda s: [get(s)]) if len(key) == 1 else (lambda s: list(get(s)))
            self._pickers[key] = picker
        return self._pickers[key]

    def _value(self, data: bytes, slots: tuple, index: int) -> Any:
        dtype = self.features[index][1]
        if dtype in _FIXED_FORMAT:
            return from_micros(slots[index]) if dtype == "timestamp" else slots[index]
        start = self._struct.size + sum(slots[i] for i in self._var_slots if i < index)
        return _decode_payload(dtype, data[start : start + slots[index]])

    def encode_columns(
        self, event: pa.Array, created: pa.Array, columns: Sequence[pa.Array]
    ) -> list[bytes]:
        """Values of Arrow columns (the view's features in declared order), column-wise."""
        import numpy as np

        record = np.zeros(len(event), dtype=self._numpy_dtype())
        record["version"] = FORMAT_VERSION
        record["event"] = micros_column(event)
        record["created"] = as_micros(created).fill_null(NULL_CREATED).to_numpy()
        record["schema"] = self.schema_id
        record["nulls"] = null_bitmaps(columns, self.bitmap_size)
        payloads = []
        for i, ((_, dtype), column) in enumerate(zip(self.features, columns, strict=True)):
            if dtype in _FIXED_FORMAT:
                record[f"f{i}"] = fixed_numpy(dtype, column)
            else:
                payloads.append(_payloads(dtype, column))
                record[f"f{i}"] = [len(p) for p in payloads[-1]]
        fixed = np.frombuffer(record.tobytes(), dtype=f"V{record.dtype.itemsize}").tolist()
        return (
            [b"".join(parts) for parts in zip(fixed, *payloads, strict=True)] if payloads else fixed
        )

    def _numpy_dtype(self) -> np.dtype:
        import numpy as np

        slots = [
            (f"f{i}", _NUMPY_FORMAT.get(dtype, "<u4")) for i, (_, dtype) in enumerate(self.features)
        ]
        header = [
            ("version", "u1"),
            ("event", "<i8"),
            ("created", "<i8"),
            ("schema", "<u4"),
            ("nulls", "u1", (self.bitmap_size,)),
        ]
        return np.dtype(header + slots)


@lru_cache(maxsize=1024)
def value_codec(features: tuple[tuple[str, str], ...]) -> ValueCodec:
    """The (cached) codec of a view, from its ``(name, dtype)`` features in declared order."""
    return ValueCodec(features)


def read_version(data: bytes) -> tuple[int, int | None]:
    """(event micros, created micros or None) of an encoded value, whatever its schema."""
    _, event, created, _ = _HEADER.unpack_from(data)
    return event, None if created == NULL_CREATED else created


class StoredBatch(NamedTuple):
    """Many values of one view, their fixed-width part decoded at once (``decode_batch``)."""

    found: np.ndarray
    """bool per value: a row of the codec's schema (None, or another schema, is not found)."""
    event_micros: np.ndarray
    """int64 per value: the row's event time; 0 where not found."""
    nulls: np.ndarray
    """bool (values, features in declared order): the row holds null there."""
    fields: np.ndarray
    """The fixed-width part of every value as a numpy record (zeros where not found); may be a
    strided view of the values' bytes."""
    data: Sequence[bytes | None]
    absent: np.ndarray
    """bool per value: the store held nothing (None), as opposed to a value of another schema."""
    skip: int = 0
    """Bytes before each value in ``data`` that are not its own (``decode_batch``)."""


def decode_batch(codec: ValueCodec, data: Sequence[bytes | None], skip: int = 0) -> StoredBatch:
    """What ``codec.decode`` reads of each value, for all of them in one pass of numpy over their
    fixed-width parts (every feature but strings, bytes and lists lives there). ``skip``: leading
    bytes of every value that are not its own (an aggregate member's tile index), passed over in
    place: the records are a view of the joined values, never sliced off one by one."""
    import numpy as np

    size = codec._struct.size
    lengths = _lengths(data)
    rows = _readable(lengths, skip + size, bool(codec._var_slots))
    picked = data if rows is None else [data[i] for i in rows.tolist()]
    record = _record_bytes(picked, skip, size, lengths if rows is None else lengths[rows]).view(
        _batch_dtype(codec))[:, 0]
    _check_versions(data, skip, record, lengths, rows)
    mine = record["schema"] == codec.schema_id
    if not mine.all():  # written under another schema: reads as absent
        rows = np.flatnonzero(mine) if rows is None else rows[mine]
        record = record[mine]
    found = np.ones(len(data), dtype=bool) if rows is None else _marked(rows, len(data))
    fields = record if rows is None else _scatter(record, rows, len(data))
    nulls = np.unpackbits(fields["nulls"], axis=1, count=len(codec.features), bitorder="little")
    return StoredBatch(found, fields["event"].astype(np.int64), nulls.view(bool), fields, data, lengths < 0, skip)


def _lengths(data: Sequence[bytes | None]) -> np.ndarray:
    """int64 per value: its length in bytes, -1 for None (one C loop when there is no None)."""
    import numpy as np

    try:
        return np.fromiter(map(len, data), np.int64, len(data))
    except TypeError:  # a None among them
        return np.fromiter((-1 if d is None else len(d) for d in data), np.int64, len(data))


def _readable(lengths: np.ndarray, width: int, variable: bool) -> np.ndarray | None:
    """Positions of the values that can hold a record of ``width`` bytes (exactly that many,
    or more when the codec has payloads); None when all are exactly that long."""
    import numpy as np

    exact = lengths == width
    if exact.all():
        return None
    return np.flatnonzero(exact | (lengths > width) if variable else exact)


def _record_bytes(values: Sequence[bytes], skip: int, size: int, lengths: np.ndarray) -> np.ndarray:
    """(values, size) uint8: each value's ``size`` bytes after its first ``skip``. A view of the
    joined values when all are ``skip + size`` long; gathered by one index otherwise."""
    import numpy as np

    joined = np.frombuffer(b"".join(values), dtype=np.uint8)
    width = skip + size
    if len(joined) == len(values) * width:
        return joined.reshape(len(values), width)[:, skip:]
    starts = np.cumsum(lengths) - lengths
    return joined[starts[:, None] + np.arange(skip, width)]


def _marked(rows: np.ndarray, count: int) -> np.ndarray:
    import numpy as np

    found = np.zeros(count, dtype=bool)
    found[rows] = True
    return found


def batch_values(
    codec: ValueCodec, batch: StoredBatch, wanted: tuple[int, ...], missing: np.ndarray
) -> list[list[Any]]:
    """The ``wanted`` features of every value as Python lists: a fixed-width dtype holds its
    zero (timestamps: int64 micros) and others None wherever ``missing`` (values, wanted) is set.
    A column of numbers costs one numpy call, not one per value."""
    import numpy as np

    columns: list[Any] = [None] * len(wanted)
    any_missing = bool(missing.any())
    raw = batch.fields[:, None].view(np.uint8)  # (values, record bytes), a view even if strided
    for positions, byte_index, dtype in _fixed_groups(codec, wanted):
        matrix = np.ascontiguousarray(raw[:, byte_index]).view(dtype)  # one matrix per group
        if any_missing:
            matrix = np.where(missing[:, positions], dtype.type(0), matrix)
        for position, column in zip(positions, matrix.T.tolist(), strict=True):
            columns[position] = column
    for position, index in enumerate(wanted):
        if columns[position] is None:
            columns[position] = _payload_column(codec, batch, index, missing[:, position])
    return columns


def _check_versions(
    data: Sequence[bytes | None], skip: int, record: np.ndarray, lengths: np.ndarray, rows: np.ndarray | None
) -> None:
    """Every value's format version (at ``skip``) is ours: the records' at once, the others'
    (too short or long for a record, rare) one by one."""
    import numpy as np

    stored = record["version"]
    versions = set(stored[stored != FORMAT_VERSION].tolist())
    if rows is not None:
        others = np.flatnonzero(lengths > skip)
        versions |= {data[i][skip] for i in np.setdiff1d(others, rows).tolist()}
    for version in versions - {FORMAT_VERSION}:
        raise ValueError(
            f"online value has format version {version}, this Granero reads {FORMAT_VERSION}"
        )


@lru_cache(maxsize=1024)
def _batch_dtype(codec: ValueCodec) -> np.dtype:
    return codec._numpy_dtype()


_GROUP_DTYPE = {**_NUMPY_FORMAT, "bool": "?"}


@lru_cache(maxsize=1024)
def _fixed_groups(
    codec: ValueCodec, wanted: tuple[int, ...]
) -> list[tuple[list[int], np.ndarray, np.dtype]]:
    """The wanted fixed-width features grouped by numpy dtype: (positions in ``wanted``, the
    indexes of their bytes in a record, dtype), so each group is read as one matrix."""
    import numpy as np

    record, groups = _batch_dtype(codec), {}
    for position, index in enumerate(wanted):
        dtype = codec.features[index][1]
        if dtype in _GROUP_DTYPE:
            groups.setdefault(_GROUP_DTYPE[dtype], []).append(position)
    found = []
    for dtype, positions in groups.items():
        slots = [record.fields[f"f{wanted[p]}"] for p in positions]
        index = np.concatenate([np.arange(o, o + t.itemsize) for t, o in slots])
        found.append((positions, index, np.dtype(dtype)))
    return found


def _scatter(record: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """``record`` spread to ``count`` rows (at positions ``rows``), zeros elsewhere."""
    import numpy as np

    full = np.zeros(count, dtype=record.dtype)
    full[rows] = record
    return full


def _payload_column(
    codec: ValueCodec, batch: StoredBatch, index: int, missing: np.ndarray
) -> list[Any]:
    """A string, bytes or list feature of every value (None where ``missing``), row by row."""
    size, fields = batch.skip + codec._struct.size, batch.fields
    offsets = [fields[f"f{j}"].tolist() for j in codec._var_slots if j < index]
    starts = [size + sum(parts) for parts in zip(*offsets, strict=True)] if offsets else None
    lengths, dtype = fields[f"f{index}"].tolist(), codec.features[index][1]
    column: list[Any] = [None] * len(fields)
    for row, hidden in enumerate(missing.tolist()):
        if not hidden:
            start = starts[row] if starts else size
            column[row] = _decode_payload(dtype, batch.data[row][start : start + lengths[row]])
    return column



def _payloads(dtype: str, column: pa.Array) -> list[bytes]:
    element = list_element(dtype)
    if element is None:
        return [v or b"" for v in binary(column).to_pylist()]
    return [b"" if items is None else encode_list(element, items) for items in column.to_pylist()]


def encode_list(element: str, items: Sequence[Any]) -> bytes:
    """A list payload: count, element null bitmap, then the elements."""
    nulls = bytearray((len(items) + 7) // 8)
    for i, item in enumerate(items):
        if item is None:
            nulls[i >> 3] |= 1 << (i & 7)
    head = len(items).to_bytes(4, "little") + bytes(nulls)
    if element in _FIXED_FORMAT:
        plain = [_plain(element, item) for item in items]
        return head + struct.pack(f"<{len(items)}{_FIXED_FORMAT[element]}", *plain)
    data = [
        b"" if item is None else item.encode() if element == "string" else bytes(item)
        for item in items
    ]
    return head + struct.pack(f"<{len(data)}I", *map(len, data)) + b"".join(data)


def _plain(element: str, item: Any) -> Any:
    if item is None:
        return False if element == "bool" else 0
    return to_micros(item) if element == "timestamp" else item


def _decode_payload(dtype: str, payload: bytes) -> Any:
    element = list_element(dtype)
    if element is None:
        return payload.decode() if dtype == "string" else payload
    count = int.from_bytes(payload[:4], "little")
    start = 4 + (count + 7) // 8
    nulls = payload[4:start]
    if element in _FIXED_FORMAT:
        items = list(struct.unpack_from(f"<{count}{_FIXED_FORMAT[element]}", payload, start))
        if element == "timestamp":
            items = [from_micros(v) for v in items]
    else:
        items = _decode_var_items(element, payload, start, count)
    return [None if nulls[i >> 3] >> (i & 7) & 1 else item for i, item in enumerate(items)]


def _decode_var_items(element: str, payload: bytes, start: int, count: int) -> list[Any]:
    lengths = struct.unpack_from(f"<{count}I", payload, start)
    position, items = start + 4 * count, []
    for length in lengths:
        chunk = payload[position : position + length]
        items.append(chunk.decode() if element == "string" else chunk)
        position += length
    return items
