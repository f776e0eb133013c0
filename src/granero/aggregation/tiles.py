"""Events -> tile states per (entity key, tile), and tile states -> window states at many times.

Both directions are columnar. Events are sorted once by (key code, tile, event time, created);
within one key code that order is also sorted by event time, which every search below relies on.

``window_states`` answers many requests (key code, time t) at once, for one window, in the one
fold order both paths use, NEWEST FIRST: start from the head tile cut at t (its events <= t), then
merge the older non-empty tiles one by one going back to the tail, ``s = merge(tile, s)`` (the
older run on the left, as ``merge`` requires); one vectorized step per tile position, shared by
the requests of one (key, t). ``fold_newest_first`` is that fold for the tiles of one request.
Why newest first: online keeps, per entity and non-empty tile i, the finalized *suffix* state
``merge(tile_i, suffix of the next non-empty tile)`` (``aggregation.suffix``); the window at t is
then exactly the suffix of its first non-empty tile >= tail(t), computed by the same merges in
the same order as here, so the values are bit-identical.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from granero.aggregation.functions import Events, Function, State, put, take
from granero.aggregation.window import tile_of
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

NULL_CREATED = -(2**62)
"""The created time of an event without one: below every real time (Spark's years 1-9999 are
within ±3e17 microseconds), and safe to negate."""


class _PairSearch:
    """Searches in rows sorted by (code, value): one int64 key per row, so one ``searchsorted``
    answers a query. The key is ``code * span + (value - low)`` when every key fits in int64 (no
    sort needed), else the code then the value's rank among all values (never overflows)."""

    def __init__(self, code: np.ndarray, value: np.ndarray) -> None:
        self._top = int(code.max(initial=-1)) + 1  # a query code above every row's reads as this one
        self._low = int(value.min()) if len(value) else 0
        self._span = int(value.max()) - self._low + 2 if len(value) else 1  # span - 1: above every value
        self._packed = (self._top + 1) * self._span < 2**63 and self._low + self._span < 2**63
        if self._packed:
            self._keys = code * self._span + (value - self._low)
        else:
            self._ranked(code, value)

    def _ranked(self, code: np.ndarray, value: np.ndarray) -> None:
        by_value = np.argsort(value, kind="stable")
        self._levels = value[by_value]
        first = np.r_[True, self._levels[1:] != self._levels[:-1]][: len(value)]
        rank = np.empty(len(value), dtype=np.int64)
        rank[by_value] = np.maximum.accumulate(np.where(first, np.arange(len(value)), 0))
        self._width = len(value) + 1
        self._keys = code * self._width + rank

    def first_at_or_after(self, code: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Per query, the first row with that code and a value >= the query's (else the first
        row of a greater code)."""
        if not self._packed:
            return np.searchsorted(self._keys, code * self._width + np.searchsorted(self._levels, value))
        offset = np.clip(value, self._low, self._low + self._span - 1) - self._low
        return np.searchsorted(self._keys, np.minimum(code, self._top) * self._span + offset)


@dataclass(frozen=True)
class Column:
    """One source column, converted once for every aggregate that reads it."""

    source: pa.Array
    values: np.ndarray
    valid: np.ndarray
    rank: np.ndarray


@dataclass(frozen=True)
class EventOrder:
    """The events that have a key and a time, sorted by (code, ts), hence by (code, tile, ts).

    Events tied on (code, ts) keep their input order: no function depends on it (first/last
    order ties by created time themselves, value reductions by value)."""

    row: np.ndarray
    code: np.ndarray
    tile: np.ndarray
    ts: np.ndarray
    created: np.ndarray

    @cached_property
    def search(self) -> _PairSearch:
        return _PairSearch(self.code, self.ts)


@dataclass(frozen=True)
class Tiles:
    """One entry per (code, tile) holding at least one event, sorted; a state per aggregate."""

    code: np.ndarray
    tile: np.ndarray
    states: dict[Hashable, State]

    @cached_property
    def search(self) -> _PairSearch:
        return _PairSearch(self.code, self.tile)


def prepare_column(column: pa.Array | pa.ChunkedArray, dtype: str) -> Column:
    """Values as numpy (int64 for ints, bools and timestamp microseconds; float64 for floats;
    objects for strings and bytes), after a cast to the dtype that refuses to lose data."""
    import pyarrow as pa
    import pyarrow.compute as pc

    source = column.cast(arrow_type(dtype))
    if isinstance(source, pa.ChunkedArray):
        source = source.combine_chunks()
    valid = np.asarray(source.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    values = _numpy_values(source, dtype)
    rank = pc.rank(source, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)
    if dtype.startswith("float"):  # -0.0 before 0.0: equal ranks then mean equal bits
        rank = rank * 2 + ~np.signbit(values)
    return Column(source, values, valid, rank)


def _numpy_values(source: pa.Array, dtype: str) -> np.ndarray:
    import pyarrow as pa

    if dtype in ("string", "bytes"):
        return source.to_numpy(zero_copy_only=False)
    if dtype.startswith("float"):
        return source.cast(pa.float64()).fill_null(0).to_numpy().astype(np.float64)
    return source.cast(pa.int64()).fill_null(0).to_numpy().astype(np.int64)


def order_events(code: np.ndarray, ts: np.ndarray, valid: np.ndarray, created: np.ndarray, hop: int) -> EventOrder:
    """Events with a key (``code >= 0``) and a time, sorted; ``created`` uses NULL_CREATED."""
    keep = np.flatnonzero((code >= 0) & valid)
    order = keep[_by_code_then_value(code[keep], ts[keep])]
    return EventOrder(order, code[order], tile_of(ts[order], hop), ts[order], created[order])


def _by_code_then_value(code: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The stable order by (code, value): one sort of ``code * span + value offset`` when that
    fits in int64 (4x faster than a lexsort of the two), else the lexsort."""
    if len(code) == 0:
        return np.zeros(0, dtype=np.int64)
    low, span = int(value.min()), int(value.max()) - int(value.min()) + 1
    if (int(code.max()) + 1) * span >= 2**63:
        return np.lexsort((value, code))
    return np.argsort(code * span + (value - low), kind="stable")


def events_of(order: EventOrder, index: np.ndarray, segment: np.ndarray, count: int, column: Column) -> Events:
    """The events at positions ``index`` of ``order``, of ``column``, in ``count`` segments."""
    row = order.row[index]
    return Events(
        segment, count, column.values[row], column.valid[row], column.rank[row], row,
        order.ts[index], order.created[index],
    )


def build_tiles(order: EventOrder, reads: Mapping[Hashable, tuple[Function, Column]]) -> Tiles:
    """The tile states of every aggregate (``reads``: output name -> function and its column)."""
    changed = (order.code[1:] != order.code[:-1]) | (order.tile[1:] != order.tile[:-1])
    starts = np.r_[True, changed][: len(order.code)]
    segment = np.cumsum(starts) - 1
    count = int(starts.sum())
    index = np.arange(len(order.code))
    events = _per_column(reads, lambda column: events_of(order, index, segment, count, column))
    states = {out: fn.build(events[id(column)]) for out, (fn, column) in reads.items()}
    return Tiles(order.code[starts], order.tile[starts], states)


def _per_column(reads: Mapping[Hashable, tuple[Function, Column]], make) -> dict[int, Events]:
    """``make(column)`` once per distinct column read (functions share its sorted values)."""
    columns = {id(column): column for _, column in reads.values()}
    return {key: make(column) for key, column in columns.items()}


def combine(fn: Function, left: State, left_has: np.ndarray, right: State, right_has: np.ndarray) -> State:
    """Per entry: ``merge`` where both sides hold events, else the side that does (``left`` when
    neither does); merges never see an empty side."""
    only_right = right_has & ~left_has
    out = tuple(np.where(only_right, r, part) for part, r in zip(left, right, strict=True))
    both = np.flatnonzero(left_has & right_has)
    put(out, both, fn.merge(take(left, both), take(right, both)))
    return out


def fold_newest_first(fn: Function, states: Sequence[State]) -> State | None:
    """The window state of tiles given oldest first, merged from the newest back:
    ``s = merge(tile, s)`` (the suffix an online member stores)."""
    window = None
    for state in reversed(states):
        window = state if window is None else fn.merge(state, window)
    return window


def window_states(
    tiles: Tiles,
    order: EventOrder,
    reads: Mapping[Hashable, tuple[Function, Column]],
    request: tuple[np.ndarray, np.ndarray],
    windows: Sequence[int],
    hop: int,
) -> dict[int, dict[Hashable, State]]:
    """Per window, per request (code >= 0, time t), each read's state over ``tail(t) <= ts <= t``.

    The windows share one fold: the head tile is built once, and each longer window carries on
    merging older tiles from the state of the shorter one, ``s = merge(tile, s)`` as before, so
    every window gets the same merges in the same order as if it were folded alone.
    """
    (code, time), inverse = _distinct_requests(*request)
    head = tile_of(time, hop)
    newer = tiles.search.first_at_or_after(code, head)
    start = order.search.first_at_or_after(code, head * hop)
    end = order.search.first_at_or_after(code, time + 1)
    index, segment = _expand_ranges(start, end)
    heads = _per_column(reads, lambda column: events_of(order, index, segment, len(code), column))
    states = {name: fn.build(heads[id(column)]) for name, (fn, column) in reads.items()}
    has, out = end > start, {}
    for window in sorted(windows):
        lo = tiles.search.first_at_or_after(code, head - window // hop)
        for name, (fn, _) in reads.items():
            states[name] = _fold_older_tiles(fn, tiles.states[name], states[name], has, (lo, newer))
        has, newer = has | (newer > lo), lo
        out[window] = {name: take(state, inverse) for name, state in states.items()}
    return out


def _distinct_requests(code: np.ndarray, time: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The distinct (code, time) pairs sorted, and per request the position of its pair."""
    order = np.lexsort((time, code))
    code, time = code[order], time[order]
    first = np.r_[True, (code[1:] != code[:-1]) | (time[1:] != time[:-1])][: len(code)]
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return (code[first], time[first]), inverse


def _fold_older_tiles(
    fn: Function, tile_states: State, state: State, has: np.ndarray, tile_range: tuple[np.ndarray, np.ndarray]
) -> State:
    """Per request, ``state = merge(tile, state)`` for its tiles ``hi - 1`` down to ``lo``, one
    tile position per vectorized step (``has``: whether ``state`` holds an event yet)."""
    lo, hi = tile_range
    has = has.copy()
    for step in range(int((hi - lo).max(initial=0))):
        active = np.flatnonzero(hi - lo > step)
        older = take(tile_states, hi[active] - 1 - step)
        put(state, active, combine(fn, older, np.ones(len(active), bool), take(state, active), has[active]))
        has[active] = True
    return state


def _expand_ranges(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of every ``[start, end)`` range, concatenated, and the range of each."""
    lengths = end - start
    segment = np.repeat(np.arange(len(start)), lengths)
    offsets = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) - offsets[segment] + start[segment], segment
