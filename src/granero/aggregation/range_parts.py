"""State parts that a window reads with one range query, not one merge per tile.

Most of the fold's work in training is stepping from tile to tile: a request whose window holds
n non-empty tiles costs n gathers and merges per state part. But some parts merge by exact,
associative and commutative integer arithmetic: the value counts (an int64 add: a count never
nears 2**63) and the extremes' keys (an int64 max or min). Their value over tiles ``[lo, hi)``
is the same whatever the order or grouping of the merges, so it is read in O(1) per request:

- a count is a difference of prefix sums;
- an extreme is the pick of two overlapping power-of-two blocks of a sparse table (built only
  up to the longest range asked).

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


class SparseTable:
    """The greatest (or least) int64 over tile ranges. Row ``j`` of the table holds the pick of
    each block of ``2**j`` tiles starting there; a range of length ``n`` is covered by the two
    blocks of the largest ``2**j <= n`` at its two ends (a pick of overlapping blocks is exact:
    max and min are idempotent), so a query is two gathers and a pick.

    The table is allocated for every row but filled only up to the longest range asked so far:
    the pages of rows never filled are never touched, so memory follows the longest run asked,
    not ``log2`` of the tile count."""

    def __init__(self, pick: np.ufunc, values: np.ndarray) -> None:
        self._pick, self._width = pick, len(values)
        self._table = np.empty((_floor_log2(np.array([max(len(values), 1)]))[0] + 1, len(values)), dtype=np.int64)
        self._table[0] = values
        self._filled = 1

    def __call__(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        level = _floor_log2(hi - lo)
        self._fill(int(level.max(initial=0)))
        flat, start = self._table.ravel(), level * self._width
        return self._pick(flat[start + lo], flat[start + hi - (1 << level)])

    def _fill(self, top: int) -> None:
        """Rows up to ``top``; row ``j`` only at its first ``n - 2**j + 1`` entries, where a
        query reads it."""
        for j in range(self._filled, top + 1):
            width, count = 1 << (j - 1), self._width - (1 << j) + 1
            below = self._table[j - 1]
            self._pick(below[:count], below[width : width + count], out=self._table[j, :count])
        self._filled = max(self._filled, top + 1)


def _floor_log2(length: np.ndarray) -> np.ndarray:
    """floor(log2(n)) of positive int64 lengths below 2**53 (exact: frexp reads the exponent)."""
    return np.frexp(length.astype(np.float64))[1].astype(np.int64) - 1


_QUERIES: dict[np.ufunc, Callable[[np.ndarray], RangeQuery]] = {
    np.add: PrefixSums,
    np.maximum: lambda values: SparseTable(np.maximum, values),
    np.minimum: lambda values: SparseTable(np.minimum, values),
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
