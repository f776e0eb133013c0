"""push.conversion against an oracle written from the cast rule's table (offline/casts.py): for
any numbers, a column converts exactly when no value would change (and then every value is the
same number), else InvalidRequest names a value that would; double -> float32 rounds, but never
overflows to infinity; refused pairs are refused whatever the values."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.errors import InvalidRequest
from granero.push.conversion import converted, spark_type_name

INT64 = st.integers(-(2**63), 2**63 - 1)
INTS = st.one_of(INT64, st.integers(-(2**31) - 2, 2**31 + 2), st.integers(2**53 - 2, 2**53 + 2),
                 st.integers(2**24 - 2, 2**24 + 2))
FLOATS = st.one_of(st.floats(), st.floats(-(2.0**64), 2.0**64).map(lambda x: float(math.floor(x))), st.just(-0.0))


def changes(value: object, dtype: str) -> bool:
    """Whether ``value`` would change as ``dtype`` (None never does)."""
    if value is None:
        return False
    if dtype in ("int32", "int64"):
        bits = 32 if dtype == "int32" else 64
        whole = isinstance(value, int) or (math.isfinite(value) and value == math.floor(value))
        return not whole or not -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)
    if dtype == "float64":
        return isinstance(value, int) and float(value) != value
    if isinstance(value, int):  # float32 from an integer: exactly representable
        return float(np.float32(value)) != value
    with np.errstate(over="ignore"):
        return math.isfinite(value) and math.isinf(np.float32(value))  # double: rounding allowed


@settings(max_examples=300, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(["int32", "int64", "float32", "float64"]),
       source=st.sampled_from(["int64", "double"]))
def test_numbers_convert_exactly_or_name_a_value_that_would_change(data, dtype, source) -> None:
    values = data.draw(st.lists(st.one_of(st.none(), INTS if source == "int64" else FLOATS), max_size=6))
    array = pa.array(values, pa.int64() if source == "int64" else pa.float64())
    would_change = [v for v in values if changes(v, dtype)]
    if would_change:
        with pytest.raises(InvalidRequest, match="^col: "):
            converted(array, dtype, "col")
        return
    result = converted(array, dtype, "col").to_pylist()
    for given_value, got in zip(values, result, strict=True):
        if given_value is None or (isinstance(given_value, float) and math.isnan(given_value)):
            assert got is None or math.isnan(got)
        elif dtype == "float32" and source == "double":
            assert got == float(np.float32(given_value))
        else:
            assert got == given_value


@pytest.mark.parametrize(("array", "dtype", "reason"), [
    (pa.array([True]), "int64", "booleans and numbers"),
    (pa.array([1]), "timestamp", "time unit"),
    (pa.array([1]), "bool", "booleans and numbers"),
    (pa.array([[1]]), "int64", "list and a single value"),
    (pa.array([b"x"]), "int64", "no conversion"),
])
def test_refused_pairs_are_refused_with_the_reason(array, dtype, reason) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        converted(array, dtype, "col")


def test_strings_parse_or_name_their_row() -> None:
    assert converted(pa.array(["7", None]), "int64", "c").to_pylist() == [7, None]
    with pytest.raises(InvalidRequest, match="row 1: string value 'x'"):
        converted(pa.array(["7", "x"]), "int64", "c")
    stamps = converted(pa.array(["2026-01-07T00:00:00Z", "2026-01-07 01:00:00+01:00"]), "timestamp", "c")
    assert stamps.to_pylist()[0] == stamps.to_pylist()[1]


def test_nanoseconds_a_timestamp_would_drop_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="row 0"):
        converted(pa.array([1_000_000_001], pa.timestamp("ns")), "timestamp", "c")
    assert converted(pa.array([1_000_000_000], pa.timestamp("ns")), "timestamp", "c")[0].value == 1_000_000


def test_arrow_types_are_named_as_spark_reads_them() -> None:
    assert [spark_type_name(t) for t in (pa.int8(), pa.uint64(), pa.timestamp("us"),
                                         pa.list_(pa.float32()), pa.dictionary(pa.int8(), pa.string()))] \
        == ["tinyint", "decimal(20,0)", "timestamp_ntz", "array<float>", "string"]
