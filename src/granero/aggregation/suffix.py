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
    """Per entry, a row of the events table holding the entity's keys."""
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
    keep = _within_span(np.where(valid, code, -1), ts, max(a.window for a in spec.aggregates) + spec.hop, spec.hop)
    kept, code, ts = events.take(keep), code[keep], ts[keep]
    order = order_events(np.arange(len(keep)), code, ts, event_created(kept), spec.hop)
    pairs = value_pairs(spec)
    columns = {key: prepare_column(kept[key[0]], key[1]) for key in dict.fromkeys((c, d) for c, _, d in pairs)}
    reads = {f"{c}:{f}": (FUNCTIONS[f], columns[c, d]) for c, f, d in pairs}
    tiles = build_tiles(order, reads)
    values = [
        fn.finalize(_suffix_states(fn, tiles.states[name], tiles.code), d, column.source)
        for (name, (fn, column)), (_, _, d) in zip(reads.items(), pairs, strict=True)
    ]
    newest = _per_code(np.maximum, code, ts, np.iinfo(np.int64).min)
    first = np.zeros(len(newest), dtype=np.int64)
    codes, rows = np.unique(code, return_index=True)
    first[codes] = rows
    created = _per_code(np.maximum, order.code, order.created, NULL_CREATED)
    return Suffixes(keep[first[tiles.code]], tiles.tile, newest[tiles.code], created[tiles.code], values)


def _within_span(code: np.ndarray, ts: np.ndarray, span: int, hop: int) -> np.ndarray:
    """Rows with a key whose time is at or after floor_to_hop(newest of their key - span)."""
    keep = np.flatnonzero(code >= 0)
    newest = _per_code(np.maximum, code[keep], ts[keep], np.iinfo(np.int64).min)
    return keep[ts[keep] >= floor_to_hop(newest[code[keep]] - span, hop)]


def _per_code(ufunc: np.ufunc, code: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
    """``ufunc`` of the values of each code 0..max (``fill`` for a code without any)."""
    out = np.full(int(code.max(initial=-1)) + 1, fill, dtype=np.int64)
    ufunc.at(out, code, values)
    return out


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
