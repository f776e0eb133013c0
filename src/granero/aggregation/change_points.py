"""Suffix values -> the instants at which any window's value of an entity changes.

From the entity's newest event on (the only times a lookup serves, ``aggregation.suffix``), the
value of a window W at t is ``suffix[j]`` of the first non-empty tile ``j >= tail(t) // hop =
t // hop - W // hop`` (W is a multiple of the hop), or the empty window's value when there is
none. So it depends on ``k = t // hop`` alone and changes only when ``k - W // hop`` passes a
non-empty tile: at ``k = j + 1 + W // hop`` (the tail crossing the end of tile j). Per entity::

    points = {newest tile} | {j + 1 + W // hop  for every non-empty tile j and window W} > newest tile
    row(k) = per window W: the index of the first suffix entry with tile >= k - W // hop, or -1

A lookup at t reads the row of the last point ``<= t // hop``; the first point (the newest
tile) also serves any earlier t (a clock running behind the writer's: the values at the newest
event). The last point (the newest tile's crossing of the largest window) holds every window
empty. Rows are indexes into the suffix entries, so the values are the suffixes' own bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from granero.aggregation.suffix import Suffixes


@dataclass(frozen=True)
class ChangePoints:
    """One entry per (entity, change point), sorted by entity, then point."""

    entry: np.ndarray
    """Per point, one suffix entry of its entity (for its keys, stamp and expiry)."""
    tile: np.ndarray
    """Per point, the tile index ``t // hop`` from which its row holds."""
    first: np.ndarray
    """Per point, whether it is its entity's first (its row also holds before ``tile``)."""
    source: np.ndarray
    """Per point and window (``windows`` order): the suffix entry holding the window's value,
    -1 for an empty window."""


def change_points(suffixes: Suffixes, hop: int, windows: Sequence[int]) -> ChangePoints:
    """The change points of every entity of ``suffixes`` (windows in microseconds, multiples of
    ``hop``)."""
    steps = np.asarray([w // hop for w in windows], dtype=np.int64)
    group = np.cumsum(np.r_[False, suffixes.row[1:] != suffixes.row[:-1]]) if len(suffixes.row) else suffixes.row
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else group
    newest = suffixes.newest[starts] // hop
    group_of, tile = _points(group, suffixes.tile, newest, steps)
    source = np.stack([_first_at_or_after(group, suffixes.tile, group_of, tile - s) for s in steps], axis=1)
    first = np.r_[True, group_of[1:] != group_of[:-1]] if len(group_of) else np.zeros(0, bool)
    return ChangePoints(starts[group_of], tile, first, source.reshape(len(tile), len(steps)))


def _points(group: np.ndarray, tiles: np.ndarray, newest: np.ndarray, steps: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (group, point) sorted: each group's newest tile, and every tail crossing after
    it. Points lie in ``newest .. newest + 1 + max step``: packed as one int per (group, point)."""
    crossing = (tiles[:, None] + 1 + steps[None, :]).ravel()
    owner = np.repeat(group, len(steps))
    later = crossing > newest[owner]
    owner = np.r_[np.arange(len(newest)), owner[later]]
    offset = np.r_[np.zeros(len(newest), np.int64), crossing[later] - newest[owner[len(newest):]]]
    width = int(steps.max(initial=0)) + 2
    packed = np.unique(owner * width + offset)
    group_of = packed // width
    return group_of, newest[group_of] + packed % width


def _first_at_or_after(group: np.ndarray, tiles: np.ndarray, asked_group: np.ndarray, asked: np.ndarray
                       ) -> np.ndarray:
    """Per asked (group, tile): the first entry of that group (entries sorted by group, tile)
    with tile >= the asked one, -1 when none. One ``searchsorted`` on (group, tile) packed as
    one int, tiles relative to their group's oldest (entries of a group span under ``width``)."""
    if not len(tiles):
        return np.full(len(asked), -1, np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    oldest = tiles[starts]
    relative = tiles - oldest[group]
    width = int(relative.max()) + 2
    wanted = np.clip(asked - oldest[asked_group], 0, width - 1)
    found = np.searchsorted(group * width + relative, asked_group * width + wanted)
    inside = found < len(tiles)
    inside[inside] = group[found[inside]] == asked_group[inside]
    return np.where(inside, found, -1)
