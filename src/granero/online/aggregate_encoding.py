"""The bytes an aggregate view keeps in Redis: one sorted set per entity, one member per change point.
Pure: no I/O. Written by sync (``RedisStore.write_aggregate_entities``), read by lookups.

Key
---
``<project>:<view>:<entity key>``, the same key bytes as a plain view's row
(``encoding.key_prefix`` + ``encoding.encode_entity_key``), holding a sorted set.

Members
-------
One member per change point ``k`` of the entity (``granero.aggregation.change_points``): a tile
index from which, until the next point, every window's value stays the same. Its score is ``k``
(exact in a double: tile indexes stay below 2**53 for any hop of a second or more), ``-inf`` for
the entity's first point, which also serves request times before it (a clock behind the
writer's)::

    offset 0   i64 big-endian   the point's tile index (members are unique)
           8   ...              a plain value (granero.online.encoding, format version 1) whose
                                features are the view's *slots*, the distinct (column, function,
                                window) of its aggregations in declared order, named
                                ``column:function:window``, typed by ``output_dtype``:
           8   u8               format version
           9   i64              the write stamp: the entity's newest event time       } compared
          17   i64              the stamp's created: the greatest created time of the  } by the
                                events written (INT64_MIN when none has one)           } script
          25   u32              schema id: crc32 of "changes;hop=<us>;span=<us>;" + the slots
          29   bitmap, slots, payloads: the slots' values, as encoding.py lays them out

A slot's value is its window's value from the point on: the finalized suffix of the first
non-empty tile at or after the window's tail (``granero.aggregation.suffix``), or the empty
window's value (``empty_values``). A lookup at t reads ``ZRANGE key t//hop -inf BYSCORE REV
LIMIT 0 1``: one member per entity holds every window's values, and the members of a request
decode with one numpy pass, as a plain view's rows do (``decode_members``). No member at all
means no event in any window. The cost: an entity keeps about one member per non-empty tile and
window whose crossing is still ahead, each holding every slot.

The schema id hashes the hop and the span (largest window + hop) with the slots: a member written
under another definition (or the older one-member-per-tile layout) reads as absent
(``StoredBatch.found`` is False), never as a wrong value.
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
FIRST_SCORE = b"-inf"
"""The score of an entity's first change point: read at any earlier request time too."""
_EMPTY = {"count": 0, "distinct_count": 0}


@dataclass(frozen=True)
class AggregateLayout:
    """What a view's members hold: its hop and span (microseconds), its (column, function,
    output dtype) pairs and its windows (ascending), distinct; each stored value (a *slot*) is
    one (pair, window), in the order of the view's aggregations."""

    hop: int
    span: int
    pairs: tuple[tuple[str, str, str], ...]
    windows: tuple[int, ...]
    slots: tuple[tuple[int, int], ...]
    """Per slot: its pair's and its window's positions."""

    @cached_property
    def codec(self) -> ValueCodec:
        features = tuple((f"{self.pairs[p][0]}:{self.pairs[p][1]}:{self.windows[w]}", self.pairs[p][2])
                         for p, w in self.slots)
        return ValueCodec(features, domain=f"changes;hop={self.hop};span={self.span};")

    def pair_index(self, column: str, function: str) -> int:
        """The position of a pair among the suffix values."""
        for index, (c, f, _) in enumerate(self.pairs):
            if (c, f) == (column, function):
                return index
        raise KeyError(f"no aggregate {function}({column}) in this view")

    def slot_index(self, column: str, function: str, window: int) -> int:
        """The position of an aggregate's value among the member's values."""
        return self.slots.index((self.pair_index(column, function), self.windows.index(window)))


def layout_of(spec: AggregationSpec) -> AggregateLayout:
    """The layout of a view's aggregation spec (``granero.aggregation.spec.aggregation_spec``)."""
    from granero.definitions.aggregation import output_dtype

    pairs = {(a.column, a.function): output_dtype(a.function, a.dtype) for a in spec.aggregates}
    order = list(pairs)
    windows = tuple(sorted({a.window for a in spec.aggregates}))
    slots = dict.fromkeys((order.index((a.column, a.function)), windows.index(a.window)) for a in spec.aggregates)
    span = max(windows) + spec.hop
    return AggregateLayout(spec.hop, span, tuple((c, f, d) for (c, f), d in pairs.items()), windows, tuple(slots))


def empty_values(layout: AggregateLayout) -> list[Any]:
    """Per pair, the value of a window without events: count 0, sum 0 (int or float), distinct
    count 0, null for the other functions."""
    return [_empty_value(function, dtype) for _, function, dtype in layout.pairs]


def _empty_value(function: str, dtype: str) -> Any:
    if function == "sum":
        return 0 if dtype == "int64" else 0.0
    return _EMPTY.get(function)


def slot_values(layout: AggregateLayout, suffix_values: Sequence[pa.Array], source: np.ndarray) -> list[pa.Array]:
    """Per slot, its value at each change point: ``source`` (points x windows) indexes the
    pair's suffix values, -1 for an empty window (``aggregation.change_points``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    empties = empty_values(layout)
    out = []
    for pair, window in layout.slots:
        index = source[:, window]
        empty = index < 0
        taken = suffix_values[pair].take(pa.array(np.where(empty, 0, index), mask=empty))
        if empties[pair] is not None and empty.any():
            taken = pc.if_else(pa.array(empty), pa.scalar(empties[pair], taken.type), taken)
        out.append(taken)
    return out


def encode_members(
    layout: AggregateLayout,
    tiles: np.ndarray,
    stamp: tuple[np.ndarray, np.ndarray],
    values: Sequence[pa.Array],
) -> list[bytes]:
    """Members of many change points (of any entities), column-wise: ``tiles`` their int64 tile
    indexes, ``stamp`` per member (newest event micros, greatest created micros or
    ``NULL_CREATED``), ``values`` one Arrow array per slot, typed by its output dtype."""
    import numpy as np
    import pyarrow as pa

    event, created = (pa.array(np.asarray(part, dtype=np.int64)) for part in stamp)
    encoded = layout.codec.encode_columns(event, created, values)
    prefixes = np.frombuffer(np.asarray(tiles, dtype=">i8").tobytes(), dtype="V8").tolist()
    return [prefix + value for prefix, value in zip(prefixes, encoded, strict=True)]


def member_scores(first: Sequence[bool], tiles: Sequence[int]) -> list[bytes]:
    """Per member, its score: its point's tile index, ``-inf`` for an entity's first point."""
    return [FIRST_SCORE if f else b"%d" % tile for f, tile in zip(first, tiles, strict=True)]


def member_tile(member: bytes) -> int:
    """The tile index of the change point a member stores."""
    return int.from_bytes(member[:TILE_BYTES], "big", signed=True)


def member_stamp(member: bytes) -> tuple[int, int | None]:
    """(newest event micros, greatest created micros or None) a member was written with."""
    event = int.from_bytes(member[STAMP_OFFSET : STAMP_OFFSET + 8], "little", signed=True)
    created = int.from_bytes(member[STAMP_OFFSET + 8 : STAMP_OFFSET + 16], "little", signed=True)
    return event, None if created == NULL_CREATED else created


def decode_members(layout: AggregateLayout, members: Sequence[bytes | None]) -> StoredBatch:
    """Every member at once (None where an entity had none), as ``encoding.decode_batch`` reads
    plain values: read the slots with ``encoding.batch_values(layout.codec, batch, ...)``. A
    member of another schema is not ``found``; neither is None (the caller tells them apart)."""
    return decode_batch(layout.codec, members, skip=TILE_BYTES)  # the tile prefix skipped in place
