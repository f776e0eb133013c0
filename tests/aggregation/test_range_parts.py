"""Range queries answer what the fold's steps would: a count over tiles [lo, hi) is their sum,
an extreme their greatest (least) key, for any ranges asked in any order; and the engine gives
the same bits with them as with every part stepped through tile by tile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from granero.aggregation import range_parts
from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.functions import FUNCTIONS, _later_row, _sum
from granero.aggregation.range_parts import PrefixSums, RangeQueries, ReducedRanges, range_query
from tests.aggregation.random_events import entities_table, events_table, random_case
from tests.aggregation.test_shared_work import SEEDS, same_bits

INT64 = np.iinfo(np.int64)


def ranges(size: int) -> st.SearchStrategy[list[tuple[int, int]]]:
    """Batches of non-empty [lo, hi) ranges within ``size`` tiles."""
    one = st.integers(0, size - 1).flatmap(lambda lo: st.tuples(st.just(lo), st.integers(lo + 1, size)))
    return st.lists(st.lists(one, min_size=1, max_size=20), min_size=1, max_size=4)


@st.composite
def tiles_and_ranges(draw):
    values = draw(st.lists(st.sampled_from([INT64.min, INT64.max, -1, 0, 1, 7])
                           | st.integers(INT64.min, INT64.max), min_size=1, max_size=70))
    return np.array(values, dtype=np.int64), draw(ranges(len(values)))


@settings(max_examples=300, deadline=None)
@given(tiles_and_ranges(), st.sampled_from([np.maximum, np.minimum]), st.booleans())
@example((np.array([3, 9, 1, 9, -2, 5, 4], dtype=np.int64), [[(0, 7), (6, 7)], [(1, 5)], [(2, 4), (0, 1)]]),
         np.maximum, False)
def test_reduced_ranges_pick_the_extreme_of_each_range(case, pick, ascending):
    """Ranges in ascending ``lo`` (the fold's order: one pass) or in any order (sorted first),
    overlapping, nested, ending at the last tile: every answer is the plain reduction of its
    range, in the order asked."""
    values, batches = case
    ranges = ReducedRanges(pick, values.copy())
    for batch in batches:
        batch = sorted(batch) if ascending else batch
        lo, hi = (np.array(side, dtype=np.int64) for side in zip(*batch, strict=True))
        expected = [pick.reduce(values[a:b]) for a, b in batch]
        assert ranges(lo, hi).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=70).flatmap(
    lambda counts: st.tuples(st.just(np.array(counts, dtype=np.int64)), ranges(len(counts)))))
def test_prefix_sums_add_each_range(case):
    counts, batches = case
    sums = PrefixSums(counts)
    for batch in batches:
        lo, hi = (np.array(side, dtype=np.int64) for side in zip(*batch, strict=True))
        assert sums(lo, hi).tolist() == [int(counts[a:b].sum()) for a, b in batch]


def test_only_exact_integer_merges_get_a_range_query():
    counts, floats = np.arange(5, dtype=np.int64), np.arange(5, dtype=np.float64)
    assert isinstance(range_query(np.add, counts), PrefixSums)
    assert isinstance(range_query(np.maximum, counts), ReducedRanges)
    assert range_query(np.add, floats) is None  # float adds are not associative
    assert range_query(_sum, counts) is None  # a checked sum must see each merge
    assert range_query(_later_row, counts) is None
    assert FUNCTIONS["count"].part_merges == (np.add,)  # what the table keys on


def test_a_tile_part_gets_one_query_for_every_window():
    queries, counts = RangeQueries(), np.arange(4, dtype=np.int64)
    assert queries.of(np.add, counts) is queries.of(np.add, counts)


@pytest.mark.parametrize("seed", SEEDS)
def test_range_queries_change_no_bit(seed, monkeypatch):
    """Every function and dtype of the random cases (counts shared with means, spreads and
    extremes): the same bits with every part stepped through tile by tile."""
    case = random_case(seed)
    entities, events = entities_table(case.entities), events_table(case.events)
    ranged = aggregate_as_of(entities, events, case.spec)
    monkeypatch.setattr(range_parts, "_QUERIES", {})
    stepped = aggregate_as_of(entities, events, case.spec)
    for aggregate in case.spec.aggregates:
        assert same_bits(stepped[aggregate.output], ranged[aggregate.output]), (seed, aggregate)
