"""The value order the engine sums and picks in, as the fast paths compute it.

``value_order.float_sort_key`` replaces a dense rank (an Arrow sort of every value) by the IEEE
bits (``float_of_key`` turns a key back into its value), and ``Events.by_value`` sorts only
segments holding two values or more: both must order exactly
as the rule says (NaN above every number, a NaN with its sign bit below one without, -0.0 below
0.0), checked here against Python's own comparisons and a full sort.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from granero.aggregation.functions import Events
from granero.aggregation.value_order import float_of_key, float_sort_key

NEGATIVE_NAN = struct.unpack("<d", struct.pack("<Q", 0xFFF8_0000_0000_0000))[0]
EDGES = [0.0, -0.0, math.inf, -math.inf, math.nan, NEGATIVE_NAN, 5e-324, -5e-324, 1.0, -1.0, 1e308, -1e308]
floats = st.sampled_from(EDGES) | st.floats(allow_nan=True, allow_infinity=True, width=64)


def value_order(x: float) -> tuple:
    """The rule, in plain Python: numbers by value, -0.0 just below 0.0, NaN above every number
    (a NaN with its sign bit just below one without)."""
    if math.isnan(x):
        return (2, 0 if math.copysign(1.0, x) < 0 else 1)
    return (1, x, math.copysign(1.0, x))


@settings(max_examples=500, deadline=None)
@given(floats, floats)
@example(-0.0, 0.0)
@example(NEGATIVE_NAN, math.nan)
@example(math.inf, math.nan)
@example(-math.inf, -1e308)
def test_float_sort_key_orders_as_the_rule(a, b):
    key = float_sort_key(np.array([a, b], dtype=np.float64))
    assert (key[0] < key[1]) == (value_order(a) < value_order(b))
    assert (key[0] == key[1]) == (value_order(a) == value_order(b))


@settings(max_examples=500, deadline=None)
@given(st.lists(floats, max_size=8))
@example([NEGATIVE_NAN, math.nan, -0.0, 0.0, 5e-324, -math.inf])
def test_a_key_gives_back_its_value(values):
    """min and max keep keys, not values: each key turns back into the same bits, a NaN into
    NaN of the same sign."""
    values = np.array(values, dtype=np.float64)
    back = float_of_key(float_sort_key(values))
    nan = np.isnan(values)
    assert np.array_equal(np.isnan(back), nan)
    assert np.array_equal(back[~nan].view(np.int64), values[~nan].view(np.int64))
    assert np.array_equal(np.signbit(back[nan]), np.signbit(values[nan]))


segments = st.lists(st.tuples(st.integers(0, 6), floats, st.booleans()), max_size=40)


@settings(max_examples=300, deadline=None)
@given(segments)
@example([(0, 2.0, True), (0, 1.0, True), (1, 3.0, True), (2, -0.0, True), (2, 0.0, True), (2, -1.0, False)])
def test_by_value_is_a_full_sort_of_each_segment(rows):
    """Singles left where they are, crowded segments sorted: the same as sorting everything."""
    rows.sort(key=lambda r: r[0])  # segments are nondecreasing
    segment = np.array([r[0] for r in rows], dtype=np.int64)
    values = np.array([r[1] for r in rows], dtype=np.float64)
    valid = np.array([r[2] for r in rows], dtype=bool)
    events = Events(segment, 7, values, valid, float_sort_key(values), np.arange(len(rows)),
                    np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64))
    got_segment, got_values = events.by_value
    expected = sorted(((s, value_order(v), v) for s, v, ok in rows if ok), key=lambda r: r[:2])
    assert got_segment.tolist() == [s for s, _, _ in expected]
    assert [value_order(v) for v in got_values] == [o for _, o, _ in expected]
