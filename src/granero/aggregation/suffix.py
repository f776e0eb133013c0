"""Events of many entities -> the finalized suffix values the online store keeps per tile.

Per entity and per non-empty tile ``i`` (tiles sorted), for each (column, function) pair::

    suffix[newest] = tile[newest]
    suffix[i]      = merge(tile[i], suffix[next non-empty tile after i])

A window W at any ``t`` at or after the entity's newest event covers the tiles ``tail(t)//hop ..``
(every stored tile is <= the head tile of t), so its state is exactly ``suffix[j]`` of the first
non-empty tile ``j >= tail(t)//hop``: the same merges, in the same order, as the newest-first fold
of ``tiles.window_states``, hence the same bits as ``engine.aggregate_as_of`` at t. One suffix
serves every window of its pair, so only ``finalize(suffix[i])`` needs storing.

Which events: an entity's events with ``floor_to_hop(newest - span) <= ts <= newest``, span =
largest window + hop. Any lookup at ``t >= newest`` reads tiles from ``tail(t) >=
floor_to_hop(newest - largest window)`` on, so older events can never count; whole tiles only, so
every stored suffix is exact. The result is a pure function of those events: recomputing it from
the same offline rows gives the same values, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from granero.aggregation.engine import AggregationSpec, event_created
from granero.aggregation.functions import FUNCTIONS, Function, State, put, take
from granero.aggregation.tiles import NULL_CREATED, build_tiles, order_events, prepare_column
from granero.aggregation.window import floor_to_hop
from granero.offline.local_as_of import key_codes, micros
from granero.offline.schema import EVENT_TIMESTAMP

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Suffixes:
    """One entry per (entity, non-empty tile), sorted by entity, then tile."""

    row: np.ndarray
    """Per entry, a row of the events table holding the entity's keys (its newest event)."""
    tile: np.ndarray
    newest: np.ndarray
    """Per entry, the entity's newest event time (microseconds): the write stamp."""
    created: np.ndarray
    """Per entry, the greatest created time of the entity's events used, NULL_CREATED if none."""
    values: list[pa.Array]
    """Per pair (``value_pairs`` order), the finalized suffix value of each entry."""


def value_pairs(spec: AggregationSpec) -> list[tuple[str, str, str]]:
    """The distinct (column, function, column dtype) of the spec, in the aggregates' order: one
    suffix value serves every window of a pair."""
    return list(dict.fromkeys((a.column, a.function, a.dtype) for a in spec.aggregates))


def suffix_values(events: pa.Table, spec: AggregationSpec) -> Suffixes:
    """The suffixes of every entity of ``events`` (keys, ``event_timestamp``, optional
    ``created_timestamp``, the columns read); events without a key or a time are skipped."""
    _, code = key_codes([events[k].slice(0, 0) for k in spec.keys], [events[k] for k in spec.keys],
                        list(spec.keys.values()))
    ts, valid = micros(events[EVENT_TIMESTAMP])
    created = event_created(events)
    code = np.where(valid, code, -1)
    newest_row = _newest_rows(code, ts)
    span = max(a.window for a in spec.aggregates) + spec.hop
    in_span = (code >= 0) & (ts >= floor_to_hop(ts[newest_row[np.maximum(code, 0)]] - span, spec.hop))
    order = order_events(np.where(in_span, code, -1), ts, valid, created, spec.hop)
    pairs = value_pairs(spec)
    columns = {(c, d): prepare_column(events[c], d) for c, _, d in pairs}
    reads = {f"{c}:{f}": (FUNCTIONS[f], columns[c, d]) for c, f, d in pairs}
    tiles = build_tiles(order, reads)
    values = [
        fn.finalize(_suffix_states(fn, tiles.states[name], tiles.code), d, column.source)
        for (name, (fn, column)), (_, _, d) in zip(reads.items(), pairs, strict=True)
    ]
    row = newest_row[tiles.code]
    return Suffixes(row, tiles.tile, ts[row], _greatest_created(order, tiles.code, created), values)


def _newest_rows(code: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per code 0..max, the row of its newest event (-1 for a code without events)."""
    keep = np.flatnonzero(code >= 0)
    by_time = keep[np.lexsort((ts[keep], code[keep]))]
    last = np.r_[code[by_time][1:] != code[by_time][:-1], True][: len(by_time)]
    newest = np.full(int(code.max(initial=-1)) + 1, -1, dtype=np.int64)
    newest[code[by_time[last]]] = by_time[last]
    return newest


def _greatest_created(order, entry_code: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Per entry, the greatest created time among its entity's ordered events."""
    greatest = np.full(int(order.code.max(initial=-1)) + 1, NULL_CREATED, dtype=np.int64)
    np.maximum.at(greatest, order.code, order.created)
    return greatest[entry_code]


def _suffix_states(fn: Function, tile_states: State, code: np.ndarray) -> State:
    """Per tile (sorted by code, tile), the merge of it and every later tile of its code, built
    from the newest back: one vectorized step per tile position from the end."""
    ends = np.flatnonzero(np.r_[code[1:] != code[:-1], True][: len(code)])
    lengths = np.diff(np.r_[-1, ends])
    suffix = tuple(part.copy() for part in tile_states)
    for step in range(1, int(lengths.max(initial=0))):
        at = ends[lengths > step] - step
        put(suffix, at, fn.merge(take(tile_states, at), take(suffix, at + 1)))
    return suffix
