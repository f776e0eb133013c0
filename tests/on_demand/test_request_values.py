"""Request-context values are checked strictly and typed exactly, against a per-value oracle.

The column check has a bulk fast path and a per-value slow path; whatever mix of Python values a
column holds, the result must be what the oracle says: refused (InvalidRequest naming the entity
row, the field and the view) or an Arrow array holding exactly the values given.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.errors import InvalidRequest
from granero.on_demand.request_values import MISSING, request_arrays
from granero.types import SCALARS

DTYPES = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
F32_MAX = 3.4028234663852886e38

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**31), 2**31),
    st.floats(), st.floats(-1e39, 1e39), st.text(max_size=4), st.binary(max_size=4),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])),
    st.just(MISSING),
    st.sampled_from([1e39, -1e39, 3.4028235e38, 2**24 + 1, 2**53 + 1, 2**31, -(2**63) - 1, 2**63,
                     2**1024, True, 0.5, 7]),  # edges of the ranges and of exactness
)
VALUES = st.one_of(ANY_VALUE, st.lists(ANY_VALUE, max_size=3))


def as_f32(x: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.inf


def accepted(dtype: str, value: object) -> bool:
    """The oracle, one value at a time, written from the module's docstring."""
    if value is None:
        return True
    if value is MISSING:
        return False
    if dtype.startswith("list<"):
        element = dtype[5:-1]
        return isinstance(value, list) and all(
            v is not MISSING and accepted(element, v) for v in value)
    if dtype in INT_RANGE:
        low, high = INT_RANGE[dtype]
        return type(value) is int and low <= value <= high
    if dtype in ("float32", "float64"):
        if type(value) is int:
            if abs(value) >= 2**1024 or float(value) != value:
                return False
            return dtype == "float64" or as_f32(float(value)) == value
        return type(value) is float and (dtype == "float64" or not math.isfinite(value)
                                         or abs(value) <= F32_MAX)
    kinds = {"bool": bool, "string": str, "bytes": bytes, "timestamp": datetime}
    return type(value) is kinds[dtype]


def expected(dtype: str, value: object) -> object:
    """What the Arrow array holds for an accepted value."""
    if value is None:
        return None
    if dtype.startswith("list<"):
        return [expected(dtype[5:-1], v) for v in value]
    if dtype == "float32":
        return as_f32(float(value))
    if dtype == "float64":
        return float(value)
    if dtype == "timestamp":
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    return value


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


TIMEZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])
VALID = {
    "int32": st.integers(-(2**31), 2**31 - 1), "int64": st.integers(-(2**63), 2**63 - 1),
    "float32": st.one_of(st.floats(width=32), st.integers(-(2**24), 2**24)),
    "float64": st.one_of(st.floats(), st.integers(-(2**53), 2**53)),
    "bool": st.booleans(), "string": st.text(max_size=4), "bytes": st.binary(max_size=4),
    "timestamp": st.datetimes(timezones=TIMEZONES),
}


def valid_values(dtype: str) -> st.SearchStrategy:
    if dtype.startswith("list<"):
        return st.lists(st.one_of(st.none(), VALID[dtype[5:-1]]), max_size=3)
    return VALID[dtype]


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(DTYPES), data=st.data())
def test_a_column_is_refused_or_typed_exactly_as_the_oracle_says(dtype, data):
    """Valid values (the bulk path), often with one arbitrary value slipped in somewhere."""
    column = data.draw(st.lists(st.one_of(st.none(), valid_values(dtype)), max_size=6))
    if data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(column)))
        column.insert(position, data.draw(VALUES))
    bad = [row for row, value in enumerate(column) if not accepted(dtype, value)]
    if bad:
        with pytest.raises(InvalidRequest) as refused:
            request_arrays([("fare", dtype)], {"fare": column}, len(column), "trip_odfv")
        message = str(refused.value)
        assert f"entity row {bad[0]}:" in message and "'fare'" in message
        assert "'trip_odfv'" in message
        return
    arrays = request_arrays([("fare", dtype)], {"fare": column}, len(column), "trip_odfv")
    held = arrays["fare"].to_pylist()
    assert str(arrays["fare"].type) == str(__import__("granero.types").types.arrow_type(dtype))
    assert len(held) == len(column)
    for value, got in zip(column, held, strict=True):
        assert same(expected(dtype, value), got), (value, got)


def test_a_missing_field_names_the_field_its_dtype_and_the_view():
    with pytest.raises(InvalidRequest, match=r"missing request value 'lat' \(float64\) of "
                                             r"on-demand view 'pickup'"):
        request_arrays([("lat", "float64")], {"lon": [1.0]}, 1, "pickup")


def test_a_column_of_the_wrong_length_is_refused():
    with pytest.raises(InvalidRequest, match="request value 'lat': 2 values for 3 entity rows"):
        request_arrays([("lat", "float64")], {"lat": [1.0, 2.0]}, 3, "pickup")


def test_a_row_that_left_the_field_out_is_named():
    with pytest.raises(InvalidRequest, match="entity row 1: missing request value 'lat'"):
        request_arrays([("lat", "float64")], {"lat": [1.0, MISSING]}, 2, "pickup")


def test_fields_of_other_views_are_ignored_and_empty_batches_give_empty_arrays():
    arrays = request_arrays([("lat", "float64")], {"lat": [], "other": []}, 0, "pickup")
    assert list(arrays) == ["lat"] and len(arrays["lat"]) == 0


def test_a_float_column_overflowing_float32_is_refused_on_the_bulk_path():
    with pytest.raises(InvalidRequest, match=r"entity row 1: .* must be float32.*overflows"):
        request_arrays([("lat", "float32")], {"lat": [0.5, 1e39]}, 2, "pickup")
