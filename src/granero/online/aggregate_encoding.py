"""The bytes an aggregate view keeps in Redis: one sorted set per entity, one member per tile.
Pure: no I/O. Written by sync (``RedisStore.write_aggregate_entities``), read by lookups.

Key
---
``<project>:<view>:<entity key>``, the same key bytes as a plain view's row
(``encoding.key_prefix`` + ``encoding.encode_entity_key``), holding a sorted set.

Members
-------
One member per non-empty tile ``i`` of the entity (tiles are ``[i * hop, (i + 1) * hop)``), whose
score is ``i`` (exact in a double: tile indexes stay below 2**53 for any hop of a second or more)::

    offset 0   i64 big-endian   tile index (members are unique; equal to the score)
           8   ...              a plain value (granero.online.encoding, format version 1) whose
                                features are the view's (column, function) pairs in declared order,
                                named ``column:function``, typed by ``output_dtype``:
           8   u8               format version
           9   i64              the write stamp: the entity's newest event time       } compared
          17   i64              the stamp's created: the greatest created time of the  } by the
                                events written (INT64_MIN when none has one)           } script
          25   u32              schema id: crc32 of "hop=<us>;span=<us>;" + the pairs and dtypes
          29   bitmap, slots, payloads: the pairs' values, as encoding.py lays them out

The values of member ``i`` are the *finalized suffix* of tile ``i``: every pair's function over the
entity's events in tiles ``i .. newest`` (``granero.aggregation.suffix``). A lookup of window W at
t reads ``ZRANGE key tail(t)//hop +inf BYSCORE LIMIT 0 1``: that one member is the window's value
for every window of its pair; no member means the window holds no event (``empty_values``).

Why finalized values, not tile states: one member per lookup instead of W / hop tiles, no merge
or set (distinct counts) at request time, and the plain value codec decodes every member of a
request with one numpy pass (``decode_members``).

The schema id hashes the hop and the span (largest window + hop) with the pairs: a member written
under another definition reads as absent (``StoredBatch.found`` is False), never as a wrong value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from granero.online.encoding import NULL_CREATED, StoredBatch, ValueCodec, decode_batch

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from granero.aggregation.engine import AggregationSpec

TILE_BYTES = 8
STAMP_OFFSET = TILE_BYTES + 1
"""Where a member's stamp (event i64, created i64, little-endian) starts."""
_EMPTY = {"count": 0, "distinct_count": 0}


@dataclass(frozen=True)
class AggregateLayout:
    """What a view's members hold: its hop and span (microseconds) and its (column, function,
    output dtype) pairs, distinct, in the order of the view's aggregations."""

    hop: int
    span: int
    pairs: tuple[tuple[str, str, str], ...]

    @cached_property
    def codec(self) -> ValueCodec:
        features = tuple((f"{column}:{function}", dtype) for column, function, dtype in self.pairs)
        return ValueCodec(features, domain=f"hop={self.hop};span={self.span};")

    def pair_index(self, column: str, function: str) -> int:
        """The position of a pair among the member's values."""
        for index, (c, f, _) in enumerate(self.pairs):
            if (c, f) == (column, function):
                return index
        raise KeyError(f"no aggregate {function}({column}) in this view")


def layout_of(spec: AggregationSpec) -> AggregateLayout:
    """The layout of a view's aggregation spec (``granero.aggregation.spec.aggregation_spec``)."""
    from granero.definitions.aggregation import output_dtype

    pairs = {(a.column, a.function): output_dtype(a.function, a.dtype) for a in spec.aggregates}
    span = max(a.window for a in spec.aggregates) + spec.hop
    return AggregateLayout(spec.hop, span, tuple((c, f, d) for (c, f), d in pairs.items()))


def empty_values(layout: AggregateLayout) -> list[Any]:
    """Per pair, the value of a window without events: count 0, sum 0 (int or float), distinct
    count 0, null for the other functions."""
    return [_empty_value(function, dtype) for _, function, dtype in layout.pairs]


def _empty_value(function: str, dtype: str) -> Any:
    if function == "sum":
        return 0 if dtype == "int64" else 0.0
    return _EMPTY.get(function)


def encode_members(
    layout: AggregateLayout,
    tiles: np.ndarray,
    stamp: tuple[np.ndarray, np.ndarray],
    values: Sequence[pa.Array],
) -> list[bytes]:
    """Members of many tiles (of any entities), column-wise: ``tiles`` int64 indexes, ``stamp``
    per member (newest event micros, greatest created micros or ``NULL_CREATED``), ``values``
    one Arrow array per pair, typed by its output dtype."""
    import numpy as np
    import pyarrow as pa

    event, created = (pa.array(np.asarray(part, dtype=np.int64)) for part in stamp)
    encoded = layout.codec.encode_columns(event, created, values)
    prefixes = np.frombuffer(np.asarray(tiles, dtype=">i8").tobytes(), dtype="V8").tolist()
    return [prefix + value for prefix, value in zip(prefixes, encoded, strict=True)]


def member_tile(member: bytes) -> int:
    """The tile index a member stores (its score)."""
    return int.from_bytes(member[:TILE_BYTES], "big", signed=True)


def member_stamp(member: bytes) -> tuple[int, int | None]:
    """(newest event micros, greatest created micros or None) a member was written with."""
    event = int.from_bytes(member[STAMP_OFFSET : STAMP_OFFSET + 8], "little", signed=True)
    created = int.from_bytes(member[STAMP_OFFSET + 8 : STAMP_OFFSET + 16], "little", signed=True)
    return event, None if created == NULL_CREATED else created


def decode_members(layout: AggregateLayout, members: Sequence[bytes | None]) -> StoredBatch:
    """Every member at once (None where a window had none), as ``encoding.decode_batch`` reads
    plain values: read the pairs with ``encoding.batch_values(layout.codec, batch, ...)``. A
    member of another schema is not ``found``; neither is None (the caller tells them apart)."""
    return decode_batch(layout.codec, [None if m is None else m[TILE_BYTES:] for m in members])
