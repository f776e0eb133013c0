"""State parts that a window reads with one range query, not one merge per tile.

Most of the fold's work in training is stepping from tile to tile: a request whose window holds
n non-empty tiles costs n gathers and merges per state part. But some parts merge by exact,
associative and commutative integer arithmetic: the value counts (an int64 add: a count never
nears 2**63) and the extremes' keys (an int64 max or min). Their value over tiles ``[lo, hi)``
is the same whatever the order or grouping of the merges, so it is read without a Python-level
step per tile:

- a count is a difference of prefix sums;
- an extreme is one ``reduceat`` pass over the tiles for all ranges at once (ranges in
  ascending order: each tile read at most once beyond the ranges' own).

The bits equal the step-by-step fold's, and so the online suffixes', by integer arithmetic
rather than by merge order. Float sums are not associative and keep the fold (its order is the
one the online suffixes add in); so does any part a function merges as a whole (Chan's formula
of the spreads reads its count with its means).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RangeQuery = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``query(lo, hi)``: per request, the part merged over tiles ``lo .. hi - 1`` (``hi > lo``)."""


class PrefixSums:
    """Sums of int64 counts over tile ranges: ``total[hi] - total[lo]``."""

    def __init__(self, values: np.ndarray) -> None:
        self._total = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(values, dtype=np.int64)])

    def __call__(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return self._total[hi] - self._total[lo]


class ReducedRanges:
    """The greatest (or least) int64 over tile ranges, each reduced by the pick in one
    ``reduceat`` pass over the tiles: the ranges' bounds interleaved ``lo0, hi0, lo1, hi1...``
    make every even entry a range's pick (the odd ones, the gaps between ranges, are dropped).

    With the ranges in ascending ``lo``, the gaps are disjoint, so the pass reads each tile at
    most once beyond the ranges' own tiles: O(tiles + total range length), in C. The fold asks
    in that order already (requests sorted by key then time); other orders are sorted first."""

    def __init__(self, pick: np.ufunc, values: np.ndarray) -> None:
        self._pick = pick
        self._values = np.append(values, np.zeros(1, dtype=values.dtype))  # a range may end at len(values)

    def __call__(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        if len(lo) == 0:
            return np.zeros(0, dtype=np.int64)
        ascending = bool(np.all(lo[1:] >= lo[:-1]))
        order = None if ascending else np.argsort(lo, kind="stable")
        bounds = np.empty(2 * len(lo), dtype=np.intp)
        bounds[0::2], bounds[1::2] = (lo, hi) if ascending else (lo[order], hi[order])
        picked = self._pick.reduceat(self._values, bounds)[0::2]
        if ascending:
            return picked
        out = np.empty_like(picked)
        out[order] = picked
        return out


_QUERIES: dict[np.ufunc, Callable[[np.ndarray], RangeQuery]] = {
    np.add: PrefixSums,
    np.maximum: lambda values: ReducedRanges(np.maximum, values),
    np.minimum: lambda values: ReducedRanges(np.minimum, values),
}
"""The merges a range query answers, on int64 parts only: the integer add (counts), the
integer max and min (the extremes' keys)."""


def range_query(merge: Callable, tile_part: np.ndarray) -> RangeQuery | None:
    """The range query of a part merged by ``merge`` over these tiles, None where only the
    step-by-step fold is exact (a float add, a checked sum, first/last rows...)."""
    make = _QUERIES.get(merge)  # type: ignore[call-overload]
    if make is None or tile_part.dtype != np.int64:
        return None
    return make(tile_part)


class RangeQueries:
    """Each tile part's range query, built once and shared by every window folded over the same
    tiles (the windows of one ``window_states`` call)."""

    def __init__(self) -> None:
        self._built: dict[int, tuple[np.ndarray, RangeQuery | None]] = {}

    def of(self, merge: Callable, tile_part: np.ndarray) -> RangeQuery | None:
        known = self._built.get(id(tile_part))
        if known is None or known[0] is not tile_part:
            known = (tile_part, range_query(merge, tile_part))
            self._built[id(tile_part)] = known
        return known[1]
