"""The aggregation functions, each as a tile state: how to build it, merge it and finalize it.

A state is a tuple of equally long numpy arrays, one entry per tile (or per window). ``build``
turns the events of many segments (tiles, or head tiles cut at a request time) into one state per
segment, vectorized; ``merge(left, right)`` combines the states of two runs of events where every
event of ``left`` is older than every event of ``right`` (tiles merged in hop order); ``finalize``
turns states into the output Arrow array. Only states with at least one event are ever merged
(``tiles.combine`` keeps that promise), so no function needs an identity element.

Bit-identical results by construction: a state depends only on the multiset of its segment's
events, never on their input order or on the other segments of the batch -- sums run over the
segment's values sorted ascending, a total order up to equal values -- and windows merge their
tiles left to right in hop order, online and offline alike.

Nulls of the column are skipped by every function (``count`` counts non-null values, as SQL's
``COUNT(column)``). NaN is a value: it propagates through sums, means and variances, and orders
above every number for min, max and ties (as Spark orders it).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from granero.aggregation.value_order import float_of_key
from granero.definitions.aggregation import output_dtype
from granero.types import arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

State = tuple[np.ndarray, ...]
_INT64_LIMIT = 2.0**63


class RowTimes:
    """``ts`` and ``created`` of a dataclass's ``row`` positions, gathered from ``all_ts`` and
    ``all_created`` when first read: only first/last need them, and a gather of every event
    costs about what sorting them does."""

    row: np.ndarray
    all_ts: np.ndarray
    all_created: np.ndarray

    @cached_property
    def ts(self) -> np.ndarray:
        return self.all_ts[self.row]

    @cached_property
    def created(self) -> np.ndarray:
        return self.all_created[self.row]


@dataclass(frozen=True)
class Events(RowTimes):
    """One column's events, grouped into ``count`` segments (``segment`` is nondecreasing)."""

    segment: np.ndarray
    count: int
    values: np.ndarray
    """int64 for ints, bools and timestamps (microseconds), float64 for floats, objects for the rest."""
    valid: np.ndarray
    sort_key: np.ndarray
    """An int64 that orders like the value (NaN above numbers, -0.0 below 0.0; equal keys, equal
    bits): the canonical order of a segment's values (sums, tie rules)."""
    row: np.ndarray
    """Position of the event in the source column (first/last take their value from there)."""
    all_ts: np.ndarray
    all_created: np.ndarray
    """Event and created microseconds of every source row (a null created below every real
    time: the as-of join's tie rule), read at ``row`` by the functions that need them."""

    @cached_property
    def value_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Segments and positions of the non-null events, ascending within each segment by
        ``sort_key``: a total order up to bit-identical values (computed once for every function).

        Only segments holding two values or more are sorted: sparse events leave most tiles
        with one, and their order is already the answer."""
        keep = np.flatnonzero(self.valid)
        segment = self.segment[keep]
        crowded = np.flatnonzero(~(_firsts(segment) & _lasts(segment)))
        if len(crowded):
            _, rank = np.unique(self.sort_key[keep[crowded]], return_inverse=True)
            within = segment[crowded] * (int(rank.max()) + 1) + rank.ravel()
            keep[crowded] = keep[crowded][np.argsort(within)]
        return segment, keep

    @cached_property
    def by_value(self) -> tuple[np.ndarray, np.ndarray]:
        """Segments and values of the non-null events in ``value_order``."""
        segment, keep = self.value_order
        return segment, self.values[keep]

    @cached_property
    def value_counts(self) -> np.ndarray:
        """Non-null values per segment. Shared: count, mean, the spreads and the extremes return
        this very array in their states, so the fold gathers and merges it once for all of them."""
        return _counts(self.segment[self.valid], self.count)

    @cached_property
    def float_sums(self) -> np.ndarray:
        """The float64 sum of each segment's values in ``by_value`` order (shared like
        ``value_counts``: float sums and means)."""
        segment, values = self.by_value
        return _segment_reduce(np.add, segment, values.astype(np.float64, copy=False), self.count, 0.0)


def take(state: State, index: np.ndarray) -> State:
    return tuple(part[index] for part in state)


def put(state: State, mask: np.ndarray, values: State) -> None:
    for part, value in zip(state, values, strict=True):
        part[mask] = value


def _segment_reduce(ufunc: np.ufunc, segment: np.ndarray, values: np.ndarray, count: int, fill) -> np.ndarray:
    """``ufunc`` over each segment's values in their order; ``fill`` for segments without any."""
    out = np.full(count, fill, dtype=values.dtype if len(values) else np.asarray(fill).dtype)
    if len(values):
        starts = np.flatnonzero(_firsts(segment))
        out[segment[starts]] = ufunc.reduceat(values, starts)
    return out


def _firsts(segment: np.ndarray) -> np.ndarray:
    """Per event, whether it opens its segment (``segment`` nondecreasing)."""
    return np.r_[True, segment[1:] != segment[:-1]][: len(segment)]


def _lasts(segment: np.ndarray) -> np.ndarray:
    """Per event, whether it closes its segment."""
    return np.r_[segment[1:] != segment[:-1], True][: len(segment)]


def _counts(segment: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(segment, minlength=count).astype(np.int64)


PartMerge = Callable[..., np.ndarray]
"""``merge(left, right, out=None)``: one part of two states merged entrywise, into ``out`` when
given (which may be ``right`` itself), else into a new array. numpy's ufuncs are such merges."""


class Function(ABC):
    """One aggregation function: its tile state's four operations."""

    name: ClassVar[str]
    part_merges: tuple[PartMerge, ...] | None = None
    """When each part of the state merges on its own (a sum, a greatest key...), one merge per
    part, and ``merge`` is those merges; the fold then merges a part that several functions
    share once per step, in place. None when ``merge`` combines the parts (Chan's formula)."""

    @abstractmethod
    def empty(self, count: int, kind: np.dtype) -> State:
        """The state of ``count`` segments without a value, for values of numpy dtype ``kind``
        (an empty window finalizes from it)."""

    @abstractmethod
    def build(self, events: Events) -> State:
        """One state per segment of ``events``, a function of each segment's events alone."""

    def merge(self, left: State, right: State) -> State:
        """Entrywise, the state of ``left``'s events followed by ``right``'s (both non-empty)."""
        if self.part_merges is None:
            raise NotImplementedError(f"{self.name} must merge its own parts")
        return tuple(merge(a, b) for merge, a, b in zip(self.part_merges, left, right, strict=True))

    @abstractmethod
    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        """The values, as the Arrow type of ``output_dtype`` (``column``: the events' source)."""


def _into(values: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return values
    out[...] = values
    return out


def _sum(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Floats add; ints add exactly, and an overflow raises."""
    if left.dtype != np.int64:
        return np.add(left, right, out=out)
    total = left + right
    if np.any((left ^ total) & (right ^ total) < 0):
        raise OverflowError("an int64 sum overflows; aggregate a float64 column instead")
    return _into(total, out)


def _later_row(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The newer run's row when it has one (``last``)."""
    return _into(np.where(right >= 0, right, left), out)


def _earlier_row(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The older run's row when it has one (``first``)."""
    return _into(np.where(left >= 0, left, right), out)


def _arrow(values: np.ndarray, null: np.ndarray | None, dtype: str) -> pa.Array:
    import pyarrow as pa

    storage = pa.int64() if dtype == "timestamp" else None
    array = pa.array(values, mask=null, type=storage)
    return array.cast(arrow_type(dtype))


class Count(Function):
    name = "count"
    part_merges = (np.add,)

    def empty(self, count: int, kind: np.dtype) -> State:
        return (np.zeros(count, dtype=np.int64),)

    def build(self, events: Events) -> State:
        return (events.value_counts,)

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        return _arrow(state[0], None, "int64")


class Sum(Function):
    """Ints sum exactly in int64 (an overflow raises); floats in float64."""

    name = "sum"
    part_merges = (_sum,)

    def empty(self, count: int, kind: np.dtype) -> State:
        return (np.zeros(count, dtype=kind),)

    def build(self, events: Events) -> State:
        segment, values = events.by_value
        if values.dtype == np.float64:
            return (events.float_sums,)
        _check_int_sum(events.float_sums)
        return (_segment_reduce(np.add, segment, values, events.count, values.dtype.type(0)),)

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        out = output_dtype("sum", dtype)
        return _arrow(state[0].astype(np.int64 if out == "int64" else np.float64), None, out)


def _check_int_sum(approximate: np.ndarray) -> None:
    if np.any(np.abs(approximate) >= _INT64_LIMIT):
        raise OverflowError("an int64 sum overflows; aggregate a float64 column instead")


class Mean(Function):
    name = "mean"
    part_merges = (np.add, _sum)

    def empty(self, count: int, kind: np.dtype) -> State:
        return np.zeros(count, dtype=np.int64), np.zeros(count)

    def build(self, events: Events) -> State:
        return events.value_counts, events.float_sums

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        n, total = state
        with np.errstate(invalid="ignore", divide="ignore"):
            return _arrow(total / np.maximum(n, 1), n == 0, "float64")


class Extreme(Function):
    """min or max; state (values counted, the least or greatest ``sort_key``). NaN is above every
    number and -0.0 below 0.0: the keys order so, and keys are integers, so the pick is exact
    (``np.minimum`` of floats is not: which of two equal zeros it returns differs between its
    scalar and SIMD loops). A float max of NaN is the canonical NaN of its sign."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        greatest = name == "max"
        self._pick = np.maximum if greatest else np.minimum
        self._none = np.iinfo(np.int64).min if greatest else np.iinfo(np.int64).max
        self.part_merges = (np.add, self._pick)

    def empty(self, count: int, kind: np.dtype) -> State:
        return np.zeros(count, dtype=np.int64), np.full(count, self._none, dtype=np.int64)

    def build(self, events: Events) -> State:
        segment, order = events.value_order
        edge = (_lasts if self._pick is np.maximum else _firsts)(segment)
        key = np.full(events.count, self._none, dtype=np.int64)
        key[segment[edge]] = events.sort_key[order[edge]]
        return events.value_counts, key

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        counted, key = state
        return _arrow(float_of_key(key) if dtype.startswith("float") else key, counted == 0, dtype)


class Endpoint(Function):
    """first or last: the value of the earliest (latest) non-null event by (event, created) time,
    a null created lowest; among full ties the greatest value, the row materialization keeps.
    State: the event's row in the source column (-1 for none)."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self._last = name == "last"
        self.part_merges = (_later_row if self._last else _earlier_row,)

    def empty(self, count: int, kind: np.dtype) -> State:
        return (np.full(count, -1, dtype=np.int64),)

    def build(self, events: Events) -> State:
        keep = np.flatnonzero(events.valid)
        sign = 1 if self._last else -1
        order = keep[np.lexsort((
            events.sort_key[keep], sign * events.created[keep], sign * events.ts[keep], events.segment[keep]
        ))]
        segment = events.segment[order]
        ends = _lasts(segment)
        row = np.full(events.count, -1, dtype=np.int64)
        row[segment[ends]] = events.row[order[ends]]
        return (row,)

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        import pyarrow as pa

        row = state[0]
        return column.take(pa.array(np.maximum(row, 0), mask=row < 0)).cast(arrow_type(dtype))


class Spread(Function):
    """Sample variance or standard deviation (Spark's ``var_samp``/``stddev_samp``; null below two
    values). State (count, mean, M2) merged with Chan's parallel formula: no cancellation of a
    sum of squares."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    def empty(self, count: int, kind: np.dtype) -> State:
        return np.zeros(count, dtype=np.int64), np.zeros(count), np.zeros(count)

    def build(self, events: Events) -> State:
        segment, values = events.by_value
        values = values.astype(np.float64)
        n = events.value_counts
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = events.float_sums / np.maximum(n, 1)
        deviation = values - mean[segment]
        return n, mean, _segment_reduce(np.add, segment, deviation * deviation, events.count, 0.0)

    def merge(self, left: State, right: State) -> State:
        (na, ma, m2a), (nb, mb, m2b) = left, right
        n = na + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mb - ma
            share = nb / np.maximum(n, 1)
            mean = ma + delta * share
            m2 = m2a + m2b + delta * delta * (na * share)
        only_left, only_right = nb == 0, na == 0
        return (
            n,
            np.where(only_left, ma, np.where(only_right, mb, mean)),
            np.where(only_left, m2a, np.where(only_right, m2b, m2)),
        )

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        n, _, m2 = state
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = m2 / np.maximum(n - 1, 1)
        return _arrow(np.sqrt(variance) if self.name == "stddev" else variance, n < 2, "float64")


class DistinctCount(Function):
    """Exact: a set of the values per tile. Exact and simple; it costs memory per distinct value
    and tile (a HyperLogLog sketch would bound it at a ~1% error)."""

    name = "distinct_count"
    _union = np.frompyfunc(operator.or_, 2, 1)

    def empty(self, count: int, kind: np.dtype) -> State:
        return (_sets([[] for _ in range(count)]),)

    def build(self, events: Events) -> State:
        members: list[list] = [[] for _ in range(events.count)]
        valid = events.valid
        for segment, value in zip(events.segment[valid].tolist(), events.values[valid].tolist(), strict=True):
            members[segment].append(value)
        return (_sets(members),)

    def merge(self, left: State, right: State) -> State:
        return (self._union(left[0], right[0]),)

    def finalize(self, state: State, dtype: str, column: pa.Array) -> pa.Array:
        return _arrow(np.fromiter(map(len, state[0]), dtype=np.int64, count=len(state[0])), None, "int64")


def _sets(members: list[list]) -> np.ndarray:
    out = np.empty(len(members), dtype=object)
    out[:] = [frozenset(m) for m in members]
    return out


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Count(), Sum(), Mean(), Extreme("min"), Extreme("max"),
        Endpoint("first"), Endpoint("last"), Spread("variance"), Spread("stddev"), DistinctCount(),
    )
}
"""Every function by its definition name (``granero.definitions.aggregation.FunctionName``)."""
