"""The key of every online row: ``<project>:<view>:<entity key>``. Pure: no I/O.

One key per (feature view, entity), so each view keeps its own
expiry (its ttl), never one shared by every view of an entity. The entity key serialises the
view's join key values in ``defs.join_keys(view)`` order, each as a one-byte type tag then::

    i  int32 and int64 alike   8 bytes, big-endian two's complement
    ?  bool                    1 byte, 0 or 1
    t  timestamp               8 bytes, big-endian microseconds since the Unix epoch (UTC)
    s  string                  4-byte big-endian length, then UTF-8
    y  bytes                   4-byte big-endian length, then the bytes

Fixed widths and length prefixes make it injective: (1, 23) and (12, 3) differ, and so do
("a", "bc") and ("ab", "c"). Integers share one width so widening an int32 key keeps its keys.
A Python int from a request and an Arrow/numpy value on a Spark executor give the same bytes.

Redis Cluster: keys carry no hash tag, so a view's keys spread over all slots instead of piling up
on one node. Project and view names cannot contain braces; a ``{...}`` that happens to occur
inside a binary entity key only narrows what Redis hashes, which client and server compute alike.
Every command touches a single key, so the client splits pipelines per node and never meets a
CROSSSLOT error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from granero.online.arrow_columns import binary, fixed_numpy, to_micros

if TYPE_CHECKING:
    import pyarrow as pa

_KEY_TAG = {
    "int32": b"i",
    "int64": b"i",
    "bool": b"?",
    "timestamp": b"t",
    "string": b"s",
    "bytes": b"y",
}


def key_prefix(project: str, view: str) -> bytes:
    """``<project>:<view>:``, the part of every key of a view before the entity key."""
    return f"{project}:{view}:".encode()


def encode_entity_key(dtypes: Sequence[str], values: Sequence[Any]) -> bytes:
    """The entity key of already-validated Python values (int, bool, str, bytes, datetime)."""
    return b"".join(_key_field(dtype, value) for dtype, value in zip(dtypes, values, strict=True))


def encode_single_keys(dtype: str, values: Sequence[Any]) -> list[bytes]:
    """``encode_entity_key`` of many one-column keys; integers without a call per key."""
    if dtype in ("int32", "int64"):
        tag = _KEY_TAG[dtype]
        return [tag + int(v).to_bytes(8, "big", signed=True) for v in values]
    return [_key_field(dtype, value) for value in values]


def _key_field(dtype: str, value: Any) -> bytes:
    tag = _KEY_TAG[dtype]
    if dtype in ("int32", "int64"):
        return tag + int(value).to_bytes(8, "big", signed=True)
    if dtype == "bool":
        return tag + (b"\x01" if value else b"\x00")
    if dtype == "timestamp":
        return tag + to_micros(value).to_bytes(8, "big", signed=True)
    data = value.encode() if dtype == "string" else bytes(value)
    return tag + len(data).to_bytes(4, "big") + data


def encode_entity_keys(dtypes: Sequence[str], columns: Sequence[pa.Array]) -> list[bytes]:
    """Entity keys of Arrow columns (no nulls), column-wise: the same bytes as encode_entity_key."""
    fields = [_key_column(dtype, column) for dtype, column in zip(dtypes, columns, strict=True)]
    if len(fields) == 1:
        return fields[0]
    return [b"".join(parts) for parts in zip(*fields, strict=True)]


def _key_column(dtype: str, column: pa.Array) -> list[bytes]:
    import numpy as np

    if column.null_count:
        raise ValueError(f"a join key column ({dtype}) holds nulls")
    tag = _KEY_TAG[dtype]
    if dtype in ("string", "bytes"):
        return [tag + len(v).to_bytes(4, "big") + v for v in binary(column).to_pylist()]
    width = 1 if dtype == "bool" else 8
    record = np.empty(len(column), dtype=[("tag", "u1"), ("value", ">u1" if width == 1 else ">i8")])
    record["tag"] = tag[0]
    record["value"] = fixed_numpy(dtype, column)
    return np.frombuffer(record.tobytes(), dtype=f"V{1 + width}").tolist()
