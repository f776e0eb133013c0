"""The engine's shared work changes no bit: windows folded together equal windows folded alone,
events of keys nobody asks for change nothing, and the fast sorts order exactly as the slow ones.

The oracle (``test_engine_oracle``) compares with a tolerance; these compare bit for bit against
the engine itself, run the simple way.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.tiles import _by_code_then_value, _distinct_requests
from tests.aggregation.random_events import entities_table, events_table, random_case

SEEDS = range(12)


def same_bits(expected: pa.ChunkedArray, actual: pa.ChunkedArray) -> bool:
    """Equal values, nulls and bits (NaN == NaN, -0.0 != 0.0)."""
    if pa.types.is_floating(expected.type):
        expected, actual = (c.cast(pa.float64()) for c in (expected, actual))
        return expected.is_null().equals(actual.is_null()) and np.array_equal(
            expected.fill_null(0).to_numpy().view(np.int64), actual.fill_null(0).to_numpy().view(np.int64)
        )
    return expected.equals(actual)


@pytest.mark.parametrize("seed", SEEDS)
def test_windows_folded_together_equal_each_folded_alone(seed):
    case = random_case(seed)
    entities, events = entities_table(case.entities), events_table(case.events)
    together = aggregate_as_of(entities, events, case.spec)
    for window in case.windows:
        alone_spec = replace(case.spec, aggregates=[a for a in case.spec.aggregates if a.window == window])
        alone = aggregate_as_of(entities, events, alone_spec)
        for aggregate in alone_spec.aggregates:
            assert same_bits(alone[aggregate.output], together[aggregate.output]), (seed, aggregate)


@pytest.mark.parametrize("seed", SEEDS)
def test_rows_asked_among_others_equal_rows_asked_alone(seed):
    """Events of keys only the other rows ask for are dropped or kept without effect."""
    case = random_case(seed)
    entities, events = entities_table(case.entities), events_table(case.events)
    everyone = aggregate_as_of(entities, events, case.spec)
    some = np.random.default_rng(seed).permutation(entities.num_rows)[: max(1, entities.num_rows // 3)]
    few = aggregate_as_of(entities.take(some), events, case.spec)
    for aggregate in case.spec.aggregates:
        assert same_bits(everyone[aggregate.output].take(some), few[aggregate.output]), (seed, aggregate)


codes = st.lists(st.integers(0, 2) | st.integers(0, 50), min_size=0, max_size=60)
wide = st.sampled_from([-(2**62), -(2**61), 2**61, 2**62 - 1]) | st.integers(-(2**62), 2**62)
values = st.integers(-3, 3) | wide  # narrow: one packed sort; wide: code * span would overflow


@settings(max_examples=300, deadline=None)
@given(codes, st.data())
@example([1, 0, 1, 0], [2**61, -(2**61), 5, 7])  # (codes) * span just above 2**63
def test_code_then_value_order_is_the_stable_lexsort(code, data):
    value = data if isinstance(data, list) else data.draw(st.lists(values, min_size=len(code), max_size=len(code)))
    code, value = np.array(code, dtype=np.int64), np.array(value, dtype=np.int64)
    assert np.array_equal(_by_code_then_value(code, value), np.lexsort((value, code)))


@settings(max_examples=300, deadline=None)
@given(codes, st.data())
def test_distinct_requests_are_numpys_unique(code, data):
    time = np.array(data.draw(st.lists(values, min_size=len(code), max_size=len(code))), dtype=np.int64)
    code = np.array(code, dtype=np.int64)
    (distinct_code, distinct_time), inverse = _distinct_requests(code, time)
    expected, expected_inverse = np.unique(np.stack([code, time]), axis=1, return_inverse=True)
    assert np.array_equal(np.stack([distinct_code, distinct_time]).reshape(2, -1), expected.reshape(2, -1))
    assert np.array_equal(inverse, expected_inverse.ravel())
