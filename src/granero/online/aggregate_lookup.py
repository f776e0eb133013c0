"""Online lookups of an aggregate view: one member per entity, at the request time.

The value of ``f(column) over W`` at ``now`` is read, never computed here: the entity's sorted set
holds one member per change point (``online.aggregate_encoding``), and the last one scored at or
before ``now // hop`` holds every window's value at ``now``. So a request sends one tile index
(``window_tiles``), ``RedisStore.read`` answers every entity of the view in the request's one
round trip (one ``ZRANGE ... BYSCORE REV LIMIT 0 1`` per entity), and the members of a whole request decode in
one numpy pass, as a plain view's rows do.

Statuses: PRESENT, with the window's value; NULL_VALUE where that value is null (a mean, min...
of an empty window, or of a window whose values are all null); an entity without any event in
the span (no key: never synced, or expired) is PRESENT with the empty window's values (count 0,
sum 0, distinct count 0, null otherwise): never NOT_FOUND. NOT_FOUND only for an entity whose
members were written under another definition of the view (hop, windows or pairs changed: the
schema id differs), until it is synced again, as a plain view's row of an older schema. The
event timestamp served is the request time ``now``: the moment the window was evaluated at.

A lookup at ``now`` earlier than the entity's newest materialized event (only with clock skew
between the writer and the server) reads the values at that event's tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from granero.aggregation.engine import Aggregate, AggregationSpec
from granero.aggregation.window import to_micros
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
    from granero.definitions.feature_view import FeatureView
    from granero.definitions.refs import ViewFeatures

_ABSENT = ViewRead(Status.NOT_FOUND, None, None)
_READERS: dict[tuple[int, tuple[str, ...]], tuple[FeatureView, AggregateReader]] = {}
"""Readers by (id of the definition, outputs asked); the definition is kept to check identity."""


@lru_cache(maxsize=1024)
def _reader(
    name: str, join_keys: tuple[tuple[str, str], ...], aggregates: tuple[Aggregate, ...], hop: int,
    asked: tuple[str, ...],
) -> AggregateReader:
    layout = layout_of(AggregationSpec(dict(join_keys), hop, aggregates))
    by_name = {a.output: a for a in aggregates}
    wanted = tuple(layout.slot_index(a.column, a.function, a.window) for a in (by_name[o] for o in asked))
    empty = empty_values(layout)
    return AggregateReader(name, join_keys, layout.codec, wanted, layout.span, layout,
                           tuple(empty[layout.slots[slot][0]] for slot in wanted))


@dataclass(frozen=True)
class AggregateReader(ViewReader):
    """How to look up one aggregate view's requested outputs: ``codec`` and ``wanted`` are the
    members' (each requested output's slot)."""

    layout: AggregateLayout | None = None
    empties: tuple[Any, ...] = ()
    """Per requested output: its value over an empty window."""

    @classmethod
    def of(cls, view: ViewFeatures) -> AggregateReader:
        """Built once per request shape and definition (``lookup`` asks on every call)."""
        definition = view.view
        cached = _READERS.get((id(definition), view.features))
        if cached is not None and cached[0] is definition and cached[1].join_keys == tuple(view.join_keys.items()):
            return cached[1]
        dtypes = {**view.join_keys, **{f.name: f.dtype for f in definition.features}}
        aggregates = tuple(Aggregate(a.name, a.column, a.function, to_micros(a.window), dtypes[a.column])
                           for a in definition.aggregations)
        hop = to_micros(definition.resolved_hop)
        reader = _reader(definition.name, tuple(view.join_keys.items()), aggregates, hop, view.features)
        if len(_READERS) >= 1024:
            _READERS.clear()
        _READERS[id(definition), view.features] = (definition, reader)
        return reader

    @cached_property
    def empty_is_null(self) -> Any:
        """bool per requested output: its empty window's value is null (else it is the zero of
        its dtype, as ``test_aggregate_read_columns`` checks for every function and dtype)."""
        import numpy as np

        return np.array([empty is None for empty in self.empties], dtype=bool)

    def window_tiles(self, now_micros: int) -> tuple[int, ...]:
        """The tile of ``now``: the member to read is the last change point at or before it."""
        return (now_micros // self.layout.hop,)

    def read(self, members: Sequence[bytes | None], now_micros: int) -> ViewRead:
        """One entity's answer from its member (``[None]`` where it has none)."""
        (member,) = members
        if member is None:
            return ViewRead(Status.PRESENT, now_micros, list(self.empties))
        stored = self._decode(member[TILE_BYTES:]) if len(member) > TILE_BYTES else None
        if stored is None:  # another definition of the view (or not a sorted set)
            return _ABSENT
        return ViewRead(Status.PRESENT, now_micros, stored.values)

    def read_columns(self, raw: Sequence[bytes | None], now_micros: int) -> ViewColumns:
        """``read`` of every entity at once; ``raw``: per entity, its member. Whole-batch numpy
        throughout: an entity without a member holds the empty window's values because each of
        them is its dtype's zero, what ``batch_values`` leaves where a value is missing
        (``_reader`` checks it), or null."""
        if len(raw) < ROW_BY_ROW_BELOW:
            return self._columns_of_reads([self.read(raw[i : i + 1], now_micros) for i in range(len(raw))])
        import numpy as np

        try:
            batch = decode_members(self.layout, raw)
        except ValueError as error:
            raise GraneroError(f"online value of view {self.name!r} is unreadable: {error}") from None
        stale = ~batch.found & ~batch.absent  # another definition's member: NOT_FOUND
        nulls = batch.nulls[:, self.wanted]
        values = batch_values(self.codec, batch, self.wanted, nulls | ~batch.found[:, None])
        gaps = nulls | stale[:, None] | (batch.absent[:, None] & self.empty_is_null)
        if not stale.any():
            return ViewColumns([0] * len(raw), [now_micros] * len(raw), values, rows_by_column(gaps))
        return ViewColumns(np.where(stale, 1, 0).tolist(), np.where(stale, 0, now_micros).tolist(), values,
                           rows_by_column(gaps))


def rows_by_column(mask: Any) -> list[list[int]]:
    """Per column of a boolean matrix (rows, columns), the rows set in it: one ``nonzero`` for
    the whole matrix, not one per column."""
    import numpy as np

    if not mask.any():
        return [[] for _ in range(mask.shape[1])]
    columns, rows = np.nonzero(mask.T)  # ordered by column, then row
    bounds = np.searchsorted(columns, np.arange(mask.shape[1] + 1)).tolist()
    found = rows.tolist()
    return [found[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
