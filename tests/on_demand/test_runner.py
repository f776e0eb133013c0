"""The transform runner: outputs checked, casts exact or refused, both modes agree."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero import Field, OnDemandFeatureView, RequestSource
from granero.errors import InvalidRequest, TransformError
from granero.on_demand import run_transform
from granero.on_demand.conform import lossless_cast
from granero.types import SCALARS, arrow_type

REQUEST = RequestSource(name="r", fields=[Field(name="a", dtype="float64"), Field(name="b", dtype="int64")])


def vectorized(columns):
    return {"total": pc.add(columns["a"], pc.cast(columns["b"], "float64")), "b_twice": pc.multiply(columns["b"], 2)}


def row_wise(row):
    a, b = row["a"], row["b"]
    return {"total": None if a is None or b is None else a + b, "b_twice": None if b is None else b * 2}


OUTPUTS = [Field(name="total", dtype="float64"), Field(name="b_twice", dtype="int64")]


def view(transform=vectorized, mode="vectorized", outputs=OUTPUTS):
    return OnDemandFeatureView(name="v", inputs=[REQUEST], features=outputs, transform=transform, mode=mode)


def test_outputs_come_typed_and_in_declared_order():
    out = run_transform(view(), {"a": pa.array([1.5, None]), "b": pa.array([2, 3])})
    assert list(out) == ["total", "b_twice"]
    assert out["total"].to_pylist() == [3.5, None] and out["b_twice"].type == pa.int64()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.none() | st.floats(-1e6, 1e6), st.none() | st.integers(-2**40, 2**40)), max_size=40))
def test_row_mode_gives_what_the_vectorized_form_gives(rows):
    inputs = {"a": pa.array([r[0] for r in rows], pa.float64()), "b": pa.array([r[1] for r in rows], pa.int64())}
    fast, slow = run_transform(view(), inputs), run_transform(view(row_wise, "row"), inputs)
    assert {k: v.to_pylist() for k, v in fast.items()} == {k: v.to_pylist() for k, v in slow.items()}


def test_an_empty_batch_never_calls_the_transform():
    def never(columns):
        raise AssertionError("called")

    out = run_transform(view(never), {"a": pa.array([], pa.float64()), "b": pa.array([], pa.int64())})
    assert [(len(c), c.type) for c in out.values()] == [(0, pa.float64()), (0, pa.int64())]


def test_numpy_and_list_outputs_are_accepted():
    out = run_transform(view(lambda c: {"total": np.asarray(c["a"]) * 2, "b_twice": [4, 6]}),
                        {"a": pa.array([1.0, 2.0]), "b": pa.array([2, 3])})
    assert out["total"].to_pylist() == [2.0, 4.0] and out["b_twice"].to_pylist() == [4, 6]


@pytest.mark.parametrize(("transform", "words"), [
    (lambda c: 1 / 0, "raised ZeroDivisionError"),
    (lambda c: {"total": c["a"]}, "returned no output 'b_twice'"),
    (lambda c: {"total": c["a"][:1], "b_twice": c["b"]}, "'total' (declared float64): 1 values for a batch of 2"),
    (lambda c: {"total": c["a"], "b_twice": pc.multiply(c["a"], 1.5)}, "output 'b_twice' (declared int64)"),
    (lambda c: {"total": pc.cast(c["b"], "string"), "b_twice": c["b"]}, "string does not convert to double"),
    (lambda c: {"total": pc.greater(c["a"], 0), "b_twice": c["b"]}, "bool does not convert to double"),
    (lambda c: {"total": c["a"], "b_twice": 7}, "not int"),
    (lambda c: (c["a"], c["b"]), "returned a tuple"),
])
def test_bad_outputs_are_transform_errors_naming_view_and_output(transform, words):
    with pytest.raises(TransformError) as raised:
        run_transform(view(transform), {"a": pa.array([1.5, 2.5]), "b": pa.array([2, 3])})
    assert "on-demand feature view 'v'" in str(raised.value) and words in str(raised.value)


def test_row_mode_errors_name_the_row():
    def picky(row):
        if row["b"] == 3:
            raise ValueError("no threes")
        return {"total": 1.0, "b_twice": 2}

    with pytest.raises(TransformError, match="raised ValueError on row 1: no threes"):
        run_transform(view(picky, "row"), {"a": pa.array([1.5, 2.5]), "b": pa.array([2, 3])})


def test_missing_or_ragged_inputs_are_invalid_requests():
    with pytest.raises(InvalidRequest, match=r"inputs \['b'\] are missing"):
        run_transform(view(), {"a": pa.array([1.0])})
    with pytest.raises(InvalidRequest, match="different lengths"):
        run_transform(view(), {"a": pa.array([1.0]), "b": pa.array([1, 2])})


def test_a_registry_copy_without_code_refuses_to_run():
    registered = view().model_copy(update={"transform": None})
    with pytest.raises(TransformError, match="has no code"):
        run_transform(registered, {"a": pa.array([1.0]), "b": pa.array([1])})


# -- the output rule, against an oracle ------------------------------------------------------------


def _exact(value, target: str) -> bool:
    """Oracle: whether a Python number survives a trip through ``target`` unchanged."""
    if value is None:
        return True
    if target in ("int32", "int64"):
        bits = 32 if target == "int32" else 64
        return float(value).is_integer() and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) and not math.isnan(value)
    kind = np.float32 if target == "float32" else np.float64
    if isinstance(value, float) and math.isnan(value):
        return True
    with np.errstate(over="ignore"):
        stored = kind(value)
    return bool(np.isfinite(stored) or not np.isfinite(value)) and (int(stored) == value if isinstance(value, int)
                                                                    else float(stored) == value)


numbers = st.one_of(
    st.lists(st.none() | st.integers(-2**63, 2**63 - 1), max_size=8).map(lambda v: pa.array(v, pa.int64())),
    st.lists(st.none() | st.integers(-2**31, 2**31 - 1), max_size=8).map(lambda v: pa.array(v, pa.int32())),
    st.lists(st.none() | st.floats(allow_infinity=False), max_size=8).map(lambda v: pa.array(v, pa.float64())),
    st.lists(st.none() | st.floats(width=32), max_size=8).map(lambda v: pa.array(v, pa.float32())),
)


@settings(max_examples=400, deadline=None)
@given(numbers, st.sampled_from(["int32", "int64", "float32", "float64"]))
def test_numbers_convert_exactly_or_are_refused_as_the_oracle_says(array, target):
    values = array.to_pylist()
    expected = all(_exact(v, target) for v in values)
    try:
        converted = lossless_cast(array, arrow_type(target))
    except ValueError:
        assert not expected, f"{values} refused for {target}"
        return
    assert expected, f"{values} became {converted.to_pylist()} as {target}"
    back = converted.to_pylist()
    assert all((a is None and b is None) or a == b or (a != a and b != b) for a, b in zip(values, back, strict=True))


@pytest.mark.parametrize("dtype", [*SCALARS, *[f"list<{s}>" for s in SCALARS]])
def test_every_declared_dtype_takes_its_own_arrow_type_and_nulls(dtype):
    target = arrow_type(dtype)
    assert lossless_cast(pa.nulls(2), target).type == target
    assert lossless_cast(pa.nulls(2, target), target).null_count == 2


def test_timestamps_lose_no_sub_microsecond_part_and_naive_is_utc():
    target = arrow_type("timestamp")
    naive = pa.array([datetime(2026, 1, 2, 3, 4, 5)], pa.timestamp("s"))
    assert lossless_cast(naive, target).to_pylist() == [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)]
    with pytest.raises(ValueError, match="without loss"):
        lossless_cast(pa.array([1_000_000_001], pa.timestamp("ns", tz="UTC")), target)
    with pytest.raises(ValueError, match="does not convert"):
        lossless_cast(pa.array([1], pa.int64()), target)


def test_list_elements_follow_the_same_rule():
    assert lossless_cast(pa.array([[1, 2], None, []], pa.list_(pa.int32())), arrow_type("list<int64>")).to_pylist() == [
        [1, 2], None, []]
    with pytest.raises(ValueError, match="without loss"):
        lossless_cast(pa.array([[0.1]], pa.list_(pa.float64())), arrow_type("list<float32>"))
    with pytest.raises(ValueError, match="does not convert"):
        lossless_cast(pa.array([["a"]]), arrow_type("list<int64>"))
