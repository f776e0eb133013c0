"""The request path's array building equals ``pa.array``, the oracle, for every dtype, any nulls.

``typed_array`` packs fixed-width values into a buffer instead of converting them one by one;
whatever the values (edges of each range, NaN, float32 rounding, huge or negative micros), the
rows made null and the length (0, 1, many), the array must be the one ``pa.array`` builds from the
same values with None at the null rows, and a value ``pa.array`` refuses must still be refused.
"""

from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.on_demand.arrays import PACKED, typed_array
from granero.types import SCALARS, arrow_type

DTYPES = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
VALUES = {
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "float32": st.one_of(st.floats(width=32), st.floats()),  # a float64 value rounds as Arrow rounds
    "float64": st.floats(),
    "timestamp": st.integers(-(2**62), 2**62),  # int64 micros, as ViewColumns holds them
    "bool": st.booleans(), "string": st.text(max_size=3), "bytes": st.binary(max_size=3),
}


def values_of(dtype: str) -> st.SearchStrategy:
    if dtype.startswith("list<"):
        return st.lists(st.one_of(st.none(), VALUES[dtype[5:-1]]), max_size=3)
    return VALUES[dtype]


def oracle(values: list, dtype: str, nulls: list[int]) -> pa.Array:
    held = [None if row in nulls else value for row, value in enumerate(values)]
    return pa.array(held, type=arrow_type(dtype))


def same_values(a: pa.Array, b: pa.Array, dtype: str) -> bool:
    """Equal value by value; for floats NaN equals NaN (``Array.equals`` says NaN != NaN)."""
    if "float" not in dtype:
        return a.equals(b)
    return same(a.to_pylist(), b.to_pylist())


def same(x: object, y: object) -> bool:
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y, strict=True))
    if isinstance(x, float) and math.isnan(x):
        return isinstance(y, float) and math.isnan(y)
    return x == y and type(x) is type(y)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(DTYPES), data=st.data())
def test_an_array_is_the_one_pa_array_builds(dtype, data):
    length = data.draw(st.sampled_from([0, 1, 2, 7, 8, 9, 17, 40]))
    values = data.draw(st.lists(values_of(dtype), min_size=length, max_size=length))
    nulls = sorted(data.draw(st.sets(st.integers(0, length - 1))) if length else set())
    if dtype in PACKED:  # where a value is missing, a ViewColumns column holds 0
        values = [0 if row in nulls and data.draw(st.booleans()) else v for row, v in enumerate(values)]
        values = [float(v) if "float" in dtype else v for v in values]
    checked = dtype in PACKED and data.draw(st.booleans())  # values of the dtype's Python type
    built = typed_array(values, dtype, nulls, checked=checked)
    built.validate(full=True)
    expected = oracle(values, dtype, nulls)
    assert built.type == expected.type and len(built) == length
    assert built.null_count == expected.null_count == len(nulls)
    assert built.is_null().to_pylist() == expected.is_null().to_pylist()
    assert same_values(built, expected, dtype)


ODD = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=2),
                st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 1.5, 1.0]))


def outcome(build):
    try:
        return build()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as error:
        return type(error)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(sorted(PACKED)), values=st.lists(ODD, max_size=4), data=st.data())
def test_values_of_other_python_types_get_what_pa_array_gives(dtype, values, data):
    """The packing would take a bool as an int or round an int into a float where ``pa.array``
    refuses or converts otherwise: any mix of Python values gets ``pa.array``'s array or error."""
    nulls = sorted(data.draw(st.sets(st.integers(0, len(values) - 1))) if values else set())
    built = outcome(lambda: typed_array(values, dtype, nulls))
    expected = outcome(lambda: oracle(values, dtype, nulls))
    if isinstance(expected, type):
        assert built is expected
    else:
        assert isinstance(built, pa.Array) and same_values(built, expected, dtype)


def test_every_fixed_width_dtype_is_packed_on_this_platform():
    """Else the fast path is silently off (big-endian, or an unexpected C int width)."""
    assert set(PACKED) == {"int32", "int64", "float32", "float64", "timestamp"}
