"""Online lookups of an aggregate view: one member per (entity, distinct window), at the request time.

The value of ``f(column) over W`` at ``now`` is read, never computed here: the member of the
entity's sorted set with the smallest tile index at or after ``tail(now) // hop`` holds the
finalized suffix of that tile, which is the window's value for every pair (column, function) of
the view (``online.aggregate_encoding``). So a request sends one tile index per distinct window
of the view (``window_tiles``), ``RedisStore.read`` answers every entity of the view with one
script call, and the members of a whole request decode in one numpy pass.

Statuses: PRESENT, with the window's value; NULL_VALUE where that value is null (a mean, min...
of an empty window, or of a window whose values are all null); an entity without any event in
the window (no member, or no key at all) is PRESENT with the empty window's values (count 0, sum
0, distinct count 0, null otherwise): never NOT_FOUND. NOT_FOUND only for an entity whose members
were written under another definition of the view (hop, windows or pairs changed: the schema id
differs), until it is synced again, as a plain view's row of an older schema. The event timestamp
served is the request time ``now``: the moment the window was evaluated at.

A lookup at ``now`` earlier than the entity's newest materialized event (only with clock skew
between the writer and the server) reads suffixes that include that event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from granero.aggregation.engine import Aggregate, AggregationSpec
from granero.aggregation.window import tail, to_micros
from granero.errors import GraneroError
from granero.online.aggregate_encoding import (
    TILE_BYTES,
    AggregateLayout,
    decode_members,
    empty_values,
    layout_of,
)
from granero.online.encoding import batch_values
from granero.online.lookup import (
    ROW_BY_ROW_BELOW,
    Status,
    ViewColumns,
    ViewRead,
    ViewReader,
)

if TYPE_CHECKING:
    from granero.definitions.refs import ViewFeatures

_ABSENT = ViewRead(Status.NOT_FOUND, None, None)


@lru_cache(maxsize=1024)
def _reader(
    name: str, join_keys: tuple[tuple[str, str], ...], aggregates: tuple[Aggregate, ...], hop: int,
    asked: tuple[str, ...],
) -> AggregateReader:
    layout = layout_of(AggregationSpec(dict(join_keys), hop, aggregates))
    by_name = {a.output: a for a in aggregates}
    wanted_aggregates = [by_name[output] for output in asked]
    windows = tuple(sorted({a.window for a in wanted_aggregates}))
    wanted = tuple(layout.pair_index(a.column, a.function) for a in wanted_aggregates)
    empty = empty_values(layout)
    return AggregateReader(
        name, join_keys, layout.codec, wanted, layout.span, layout, windows,
        tuple(windows.index(a.window) for a in wanted_aggregates), tuple(empty[i] for i in wanted),
    )


@dataclass(frozen=True)
class AggregateReader(ViewReader):
    """How to look up one aggregate view's requested outputs. ``codec`` and ``wanted`` are the
    members' (the pairs'); each requested output reads its pair from its window's member."""

    layout: AggregateLayout | None = None
    windows: tuple[int, ...] = ()
    """The view's distinct windows (microseconds) the request reads, one member each."""
    window_of: tuple[int, ...] = ()
    """Per requested output: the position of its window in ``windows``."""
    empties: tuple[Any, ...] = ()
    """Per requested output: its value over an empty window."""

    @classmethod
    def of(cls, view: ViewFeatures) -> AggregateReader:
        """Built once per request shape and definition (``lookup`` asks on every call)."""
        definition = view.view
        dtypes = {**view.join_keys, **{f.name: f.dtype for f in definition.features}}
        aggregates = tuple(Aggregate(a.name, a.column, a.function, to_micros(a.window), dtypes[a.column])
                           for a in definition.aggregations)
        hop = to_micros(definition.resolved_hop)
        return _reader(definition.name, tuple(view.join_keys.items()), aggregates, hop, view.features)

    def window_tiles(self, now_micros: int) -> tuple[int, ...]:
        """Per window, the tile index of its tail at ``now``: the members to read start there."""
        hop = self.layout.hop
        return tuple(tail(now_micros, window, hop) // hop for window in self.windows)

    def read(self, members: Sequence[bytes | None], now_micros: int) -> ViewRead:
        """One entity's answer from its member per window (None where the window is empty)."""
        decoded = []
        for member in members:
            stored = None if member is None or len(member) <= TILE_BYTES else self._decode(member[TILE_BYTES:])
            if member is not None and stored is None:  # another definition of the view (or not a set)
                return _ABSENT
            decoded.append(stored)
        values = [
            empty if decoded[w] is None else decoded[w].values[k]
            for k, (w, empty) in enumerate(zip(self.window_of, self.empties, strict=True))
        ]
        return ViewRead(Status.PRESENT, now_micros, values)

    def read_columns(self, raw: Sequence[bytes | None], now_micros: int) -> ViewColumns:
        """``read`` of every entity at once; ``raw``: per entity, per window, its member."""
        width = len(self.windows)
        if len(raw) < ROW_BY_ROW_BELOW * width:
            reads = [self.read(raw[i : i + width], now_micros) for i in range(0, len(raw), width)]
            return self._columns_of_reads(reads)
        import numpy as np

        try:
            batch = decode_members(self.layout, raw)
        except ValueError as error:
            raise GraneroError(f"online value of view {self.name!r} is unreadable: {error}") from None
        found = batch.found.reshape(-1, width)
        stale = (np.fromiter((m is not None for m in raw), bool, len(raw)).reshape(-1, width) & ~found).any(axis=1)
        nulls = batch.nulls[:, self.wanted]
        values = batch_values(self.codec, batch, self.wanted, nulls | ~batch.found[:, None])
        columns, gaps = [], []
        for k, (w, empty) in enumerate(zip(self.window_of, self.empties, strict=True)):
            here = found[:, w]
            missing = stale | (here & nulls[w::width, k]) | (~here if empty is None else False)
            columns.append(values[k][w::width])
            gaps.append(np.flatnonzero(missing).tolist())
        status = np.where(stale, 1, 0)
        return ViewColumns(status.tolist(), np.where(stale, 0, now_micros).tolist(), columns, gaps)
