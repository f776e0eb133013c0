"""Members of an aggregate view's sorted set: point prefix, stamp, values round trip, schema ids,
slots and their empty values."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.aggregation.engine import Aggregate, AggregationSpec
from granero.online.aggregate_encoding import (
    AggregateLayout,
    decode_members,
    empty_values,
    encode_members,
    layout_of,
    member_scores,
    member_stamp,
    member_tile,
    slot_values,
)
from granero.online.encoding import NULL_CREATED, batch_values
from granero.types import arrow_type

HOUR = 3_600_000_000
PAIRS = (
    ("fare", "sum", "float64"),
    ("trips", "count", "int64"),
    ("fare", "min", "float32"),
    ("zone", "last", "string"),
    ("when", "max", "timestamp"),
    ("ok", "first", "bool"),
    ("raw", "first", "bytes"),
    ("small", "max", "int32"),
)
ONE_WINDOW = tuple((pair, 0) for pair in range(len(PAIRS)))
LAYOUT = AggregateLayout(HOUR, 25 * HOUR, PAIRS, (HOUR,), ONE_WINDOW)
_VALUES = {
    "float64": st.floats(allow_nan=False, width=64),
    "float32": st.floats(allow_nan=False, width=32),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "string": st.text(max_size=5),
    "bytes": st.binary(max_size=5),
    "bool": st.booleans(),
    "timestamp": st.integers(-(2**60), 2**60),
}


def member_rows(n: int):
    return st.lists(
        st.tuples(*(st.none() | _VALUES[dtype] for _, _, dtype in PAIRS)), min_size=n, max_size=n
    )


def arrow_column(dtype: str, values: list) -> pa.Array:
    if dtype == "timestamp":
        return pa.array(values, pa.int64()).cast(arrow_type(dtype))
    return pa.array(values, arrow_type(dtype))


@settings(max_examples=60, deadline=None)
@given(
    tiles=st.lists(st.integers(-(2**50), 2**50), min_size=1, max_size=20, unique=True),
    data=st.data(),
)
def test_members_round_trip_every_output_dtype_and_null(tiles, data):
    rows = data.draw(member_rows(len(tiles)))
    event = np.full(len(tiles), 1_767_225_600_000_000, dtype=np.int64)
    created = np.full(len(tiles), NULL_CREATED, dtype=np.int64)
    columns = [arrow_column(d, [r[i] for r in rows]) for i, (_, _, d) in enumerate(PAIRS)]
    members = encode_members(LAYOUT, np.array(tiles), (event, created), columns)
    assert [member_tile(m) for m in members] == tiles
    assert {member_stamp(m) for m in members} == {(int(event[0]), None)}
    batch = decode_members(LAYOUT, members)
    assert batch.found.all()
    decoded = batch_values(LAYOUT.codec, batch, tuple(range(len(PAIRS))), batch.nulls)
    for i, (_, _, dtype) in enumerate(PAIRS):
        expected = [r[i] for r in rows]
        got = [None if batch.nulls[row, i] else v for row, v in enumerate(decoded[i])]
        if dtype == "float32":  # stored as f4: the float32 nearest the drawn value
            expected = [None if v is None else float(np.float32(v)) for v in expected]
        assert got == expected, dtype


def test_the_tile_prefix_keeps_members_of_equal_values_distinct():
    """The member's prefix is its point's tile: it makes members of different points distinct
    even with equal values (before 1970 too); the first point is scored -inf."""
    values = [arrow_column(d, [None, None]) for _, _, d in PAIRS]
    stamp = (np.zeros(2, np.int64), np.zeros(2, np.int64))
    first, second = encode_members(LAYOUT, np.array([-3, 5]), stamp, values)
    assert first != second and first[8:] == second[8:]
    assert (member_tile(first), member_tile(second)) == (-3, 5)
    assert member_scores([True, False, False], [-3, 5, -7]) == [b"-inf", b"5", b"-7"]


def test_stamp_created_keeps_its_value():
    values = [arrow_column(d, [None]) for _, _, d in PAIRS]
    (member,) = encode_members(LAYOUT, np.array([1]), (np.array([10]), np.array([-7])), values)
    assert member_stamp(member) == (10, -7)


@pytest.mark.parametrize("changed", [
    AggregateLayout(2 * HOUR, 25 * HOUR, PAIRS, (HOUR,), ONE_WINDOW),
    AggregateLayout(HOUR, 26 * HOUR, PAIRS, (HOUR,), ONE_WINDOW),
    AggregateLayout(HOUR, 25 * HOUR, PAIRS[:-1], (HOUR,), ONE_WINDOW[:-1]),
    AggregateLayout(HOUR, 25 * HOUR, (("fare", "sum", "int64"), *PAIRS[1:]), (HOUR,), ONE_WINDOW),
    AggregateLayout(HOUR, 25 * HOUR, (("fare", "max", "float64"), *PAIRS[1:]), (HOUR,), ONE_WINDOW),
    AggregateLayout(HOUR, 25 * HOUR, PAIRS, (2 * HOUR,), ONE_WINDOW),
    AggregateLayout(HOUR, 25 * HOUR, PAIRS, (HOUR, 2 * HOUR), ((0, 1), *ONE_WINDOW[1:])),
])
def test_a_member_of_another_definition_reads_as_absent(changed):
    values = [arrow_column(d, [None]) for _, _, d in changed.pairs]
    stamp = (np.zeros(1, np.int64), np.zeros(1, np.int64))
    members = encode_members(changed, np.array([1]), stamp, values)
    assert changed.codec.schema_id != LAYOUT.codec.schema_id
    assert decode_members(LAYOUT, [*members, None]).found.tolist() == [False, False]
    assert decode_members(changed, members).found.tolist() == [True]


def test_empty_values_per_function():
    layout = AggregateLayout(HOUR, 2 * HOUR, (
        ("x", "count", "int64"), ("x", "sum", "int64"), ("y", "sum", "float64"),
        ("x", "distinct_count", "int64"), ("y", "mean", "float64"), ("y", "min", "float64"),
        ("z", "last", "string"),
    ), (HOUR,), tuple((pair, 0) for pair in range(7)))
    assert empty_values(layout) == [0, 0, 0.0, 0, None, None, None]
    assert isinstance(empty_values(layout)[2], float)


def test_slot_values_take_each_windows_suffix_or_its_empty_value():
    """Per slot (pair, window): the suffix entry the point names for that window; -1 is the
    empty window's value (0 for a count, null for a mean), never a null count."""
    layout = AggregateLayout(HOUR, 3 * HOUR, (("x", "count", "int64"), ("y", "mean", "float64")),
                             (HOUR, 2 * HOUR), ((0, 0), (1, 1), (0, 1)))
    suffixes = [pa.array([5, 3], pa.int64()), pa.array([None, 2.5])]
    source = np.array([[0, 0], [1, 0], [-1, 1], [-1, -1]])
    counts_1h, means_2h, counts_2h = slot_values(layout, suffixes, source)
    assert counts_1h.to_pylist() == [5, 3, 0, 0]
    assert means_2h.to_pylist() == [None, None, 2.5, None]
    assert counts_2h.to_pylist() == [5, 5, 3, 0]
    assert counts_1h.type == pa.int64() and means_2h.type == pa.float64()


def test_layout_of_a_spec_keeps_one_pair_per_column_and_function_and_one_slot_per_window():
    aggregates = [
        Aggregate("a_1h", "fare", "mean", HOUR, "float32"),
        Aggregate("a_7d", "fare", "mean", 168 * HOUR, "float32"),
        Aggregate("n_1h", "driver", "count", HOUR, "int64"),
        Aggregate("m_1h", "fare", "max", HOUR, "float32"),
        Aggregate("again", "fare", "max", HOUR, "float32"),
    ]
    layout = layout_of(AggregationSpec({"driver": "int64"}, HOUR // 60, aggregates))
    assert layout.pairs == (
        ("fare", "mean", "float64"), ("driver", "count", "int64"), ("fare", "max", "float32"),
    )
    assert layout.windows == (HOUR, 168 * HOUR)
    assert layout.slots == ((0, 0), (0, 1), (1, 0), (2, 0))
    assert [name for name, _ in layout.codec.features] == [
        f"fare:mean:{HOUR}", f"fare:mean:{168 * HOUR}", f"driver:count:{HOUR}", f"fare:max:{HOUR}"]
    assert layout.span == 168 * HOUR + HOUR // 60
    assert layout.pair_index("fare", "max") == 2
    assert layout.slot_index("fare", "mean", 168 * HOUR) == 1
    with pytest.raises(KeyError, match="min"):
        layout.pair_index("fare", "min")
    with pytest.raises(ValueError):
        layout.slot_index("fare", "max", 168 * HOUR)
    assert timedelta(microseconds=layout.hop) == timedelta(minutes=1)
