"""Row mode's request path (Python values in, plain outputs packed directly) equals the Arrow path.

Training runs a row-mode transform on the Python values of its Arrow batch (``to_pylist``); a
lookup hands it the values it holds, with no Arrow array in between (``on_demand.rows``,
``request_values.request_lists``), and takes plain outputs as they are, without the generic
conversion (``arrays.plain_column``). For every dtype, nulls, and 0, 1 or many rows, each shortcut must give
what the Arrow path gives, value by value and type by type (timestamps in Arrow's UTC zone), and
the same error where that path refuses.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.definitions.field import Field
from granero.errors import InvalidRequest, TransformError
from granero.on_demand.arrays import plain_column, typed_array
from granero.on_demand.conform import as_arrow, lossless_cast
from granero.on_demand.request_values import request_arrays, request_lists
from granero.on_demand.rows import arrow_utc, feature_values
from granero.on_demand.runner import Runnable, row_outputs, run_batch, run_rows
from granero.online.encoding import to_micros
from granero.online.on_demand_step import _output_column
from granero.types import SCALARS, arrow_type
from tests.on_demand.test_request_values import VALUES, valid_values

DTYPES = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
LENGTHS = st.sampled_from([0, 1, 2, 5, 17])
MOMENTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
STORED = {  # what a read's column holds: decoded values (float32 exact), timestamps as micros
    "int32": st.integers(-(2**31), 2**31 - 1), "int64": st.integers(-(2**63), 2**63 - 1),
    "float32": st.floats(width=32), "float64": st.floats(), "bool": st.booleans(),
    "string": st.text(max_size=3), "bytes": st.binary(max_size=3),
    "timestamp": MOMENTS.map(lambda moment: to_micros(moment.replace(tzinfo=UTC))),
}
ELEMENTS = {**STORED, "timestamp": MOMENTS.map(lambda moment: moment.replace(tzinfo=UTC))}
ZEROS = {"int32": 0, "int64": 0, "float32": 0.0, "float64": 0.0, "bool": False, "timestamp": 0}


def stored(dtype: str) -> st.SearchStrategy:
    if dtype.startswith("list<"):
        return st.lists(st.one_of(st.none(), ELEMENTS[dtype[5:-1]]), max_size=3)
    return STORED[dtype]


def same(a: object, b: object) -> bool:
    """Equal and of one type; NaN equals NaN; datetimes carry the very same zone object."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, datetime):
        return type(b) is datetime and a == b and a.tzinfo is b.tzinfo and a.fold == b.fold
    return type(a) is type(b) and a == b


def outcome(build):
    try:
        return build()
    except (InvalidRequest, TransformError) as error:
        return (type(error), str(error))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(DTYPES), length=LENGTHS, data=st.data())
def test_a_read_column_gives_the_values_its_arrow_array_gives(dtype, length, data):
    values = data.draw(st.lists(stored(dtype), min_size=length, max_size=length))
    missing = sorted(data.draw(st.sets(st.integers(0, length - 1)))) if length else []
    for row in missing:  # a read holds 0 (fixed width) or None where a value is missing
        values[row] = ZEROS.get(dtype) if data.draw(st.booleans()) or dtype not in ZEROS else values[row]
    expected = typed_array(values, dtype, missing).to_pylist()
    assert same(feature_values(values, dtype, missing), expected)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(DTYPES), data=st.data())
def test_request_values_give_what_their_arrow_arrays_give_or_the_same_refusal(dtype, data):
    column = data.draw(st.lists(st.one_of(st.none(), valid_values(dtype)), max_size=6))
    if data.draw(st.booleans()):
        column.insert(data.draw(st.integers(0, len(column))), data.draw(VALUES))
    fields, columns = [("fare", dtype)], {"fare": column}
    expected = outcome(lambda: request_arrays(fields, columns, len(column), "v")["fare"].to_pylist())
    got = outcome(lambda: request_lists(fields, columns, len(column), "v")["fare"])
    assert got == expected if isinstance(expected, tuple) else same(got, expected)


def test_plain_request_columns_and_utc_timestamps_take_no_arrow_array(monkeypatch):
    """The shortcut is really taken for the common columns (else it is only slower, silently)."""
    import granero.on_demand.request_values as module

    monkeypatch.setattr(module, "_field_array", lambda *args: pytest.fail("built an array"))
    naive, aware = datetime(2024, 5, 1, 12), datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(0)))
    fields = [("a", "int64"), ("b", "float32"), ("c", "string"), ("t", "timestamp")]
    got = request_lists(fields, {"a": [1, 2], "b": [0.1, 2.5], "c": ["x", "y"], "t": [naive, aware]},
                        2, "v")
    assert got["b"] == [pa.array([0.1], pa.float32()).to_pylist()[0], 2.5]
    assert all(moment.tzinfo is arrow_utc() for moment in got["t"])


PLAIN_OUTPUT = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.floats(width=32),
                         st.text(max_size=2), st.binary(max_size=2),
                         st.sampled_from([2**31, -(2**31) - 1, 2**63, 0.1, 1.0, 16777217.0]))


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from(DTYPES), values=st.lists(PLAIN_OUTPUT, max_size=5))
def test_an_output_taken_as_is_is_what_the_lossless_rule_gives(dtype, values):
    """A plain column (a read's form) and its array equal the rule's array and that array's read
    form, wherever ``plain_column`` takes the values."""
    plain = plain_column(values, dtype)
    if plain is None:
        return
    expected = lossless_cast(as_arrow(values), arrow_type(dtype))
    column, nulls = _output_column(expected, dtype)
    assert same(plain[0], column) and plain[1] == nulls
    packed = typed_array(plain[0], dtype, plain[1], checked=True)
    packed.validate(full=True)
    assert packed.type == expected.type and same(packed.to_pylist(), expected.to_pylist())


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64", "bool", "string", "bytes"])
def test_plain_outputs_are_taken_as_is(dtype):
    values = {"int32": [1, None, -5], "int64": [2**40, None, 0], "float32": [0.5, None, 1.25],
              "float64": [0.1, None, math.nan], "bool": [True, None, False],
              "string": ["a", None, ""], "bytes": [b"a", None, b""]}[dtype]
    assert plain_column(values, dtype) is not None


def echo(row):
    """Each input handed back (and a pair summed when both are numbers), as a row transform."""
    out = {f"out_{name}": value for name, value in row.items()}
    a, b = row.get("a"), row.get("b")
    out["out_sum"] = a + b if isinstance(a, int | float) and isinstance(b, int | float) else None
    return out


def runnable(dtypes: dict[str, str], sum_dtype: str, function=echo) -> Runnable:
    outputs = [Field(name=f"out_{name}", dtype=dtype) for name, dtype in dtypes.items()]
    outputs.append(Field(name="out_sum", dtype=sum_dtype))
    return Runnable("on-demand feature view 't'", function, "row", "t:echo", tuple(dtypes),
                    tuple(outputs))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(a=st.sampled_from(DTYPES), b=st.sampled_from(DTYPES), sum_dtype=st.sampled_from(DTYPES),
       length=LENGTHS, data=st.data())
def test_a_row_transform_on_python_values_answers_as_on_arrow_arrays(a, b, sum_dtype, length, data):
    """The whole row path (inputs, calls, outputs, errors) against the Arrow path training runs."""
    transform = runnable({"a": a, "b": b}, sum_dtype)
    values = {n: data.draw(st.lists(stored(d), min_size=length, max_size=length))
              for n, d in (("a", a), ("b", b))}
    missing = {n: sorted(data.draw(st.sets(st.integers(0, length - 1)))) if length else []
               for n in values}
    arrays = {n: typed_array(values[n], d, missing[n]) for n, d in (("a", a), ("b", b))}
    lists = {n: feature_values(values[n], d, missing[n]) for n, d in (("a", a), ("b", b))}
    expected = outcome(lambda: run_batch(transform, arrays, length))
    got = outcome(lambda: run_rows(transform, lists, length))
    if isinstance(expected, tuple):
        assert got == expected
        return
    assert not isinstance(got, tuple), got
    forms = row_outputs(transform, lists, length)  # the lookup's form: no array when plain
    for field in transform.outputs:
        column = expected[field.name]
        assert got[field.name].type == column.type
        assert same(got[field.name].to_pylist(), column.to_pylist())
        form = forms[field.name]
        form = form if type(form) is tuple else _output_column(form, field.dtype)
        wanted = _output_column(column, field.dtype)
        assert same(form[0], wanted[0]) and form[1] == wanted[1]


def test_row_errors_are_named_alike_on_both_paths():
    def picky(row):
        if row["a"] == 2:
            raise ValueError("two")
        return {"out_a": row["a"], "out_sum": "text"}

    transform = runnable({"a": "int64"}, "float64", picky)
    refused = outcome(lambda: run_rows(transform, {"a": [1, 2]}, 2))
    assert refused == outcome(lambda: run_batch(transform, {"a": pa.array([1, 2])}, 2))
    assert "raised ValueError on row 1: two" in refused[1]
    wrong = outcome(lambda: run_rows(transform, {"a": [1]}, 1))
    assert wrong == outcome(lambda: run_batch(transform, {"a": pa.array([1])}, 1))
    assert "output 'out_sum' (declared float64)" in wrong[1]


@pytest.mark.parametrize("dtype", [f"list<{s}>" for s in SCALARS])
def test_row_outputs_of_empty_and_null_lists_take_the_declared_type(dtype):
    """A list output of only [] and [None] is list<null> to Arrow: nulls of the declared element
    type, as a vectorized transform's typed list would be (it was refused: null -> element)."""
    def lists(row):
        return {"out_a": row["a"], "out_sum": None}

    transform = runnable({"a": dtype}, "int64", lists)
    got = run_rows(transform, {"a": [[], [None], None]}, 3)["out_a"]
    assert got.type == arrow_type(dtype) and got.to_pylist() == [[], [None], None]
