"""Worked examples of the rule, the empty and null cases, output types, and numerical care."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from granero.aggregation.engine import Aggregate, AggregationSpec, aggregate_as_of
from granero.aggregation.window import covers, floor_to_hop, tail, tiles_covered
from granero.definitions.aggregation import Aggregation, output_dtype, resolve_hop
from granero.types import arrow_type
from tests.aggregation.random_events import entities_table, events_table, random_case

HOUR = 3600 * 1_000_000
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY0 + timedelta(hours=hours)


def table(**columns) -> pa.Table:
    times = {"event_timestamp", "created_timestamp"}
    return pa.table({
        name: pa.array(values, pa.timestamp("us", tz="UTC")) if name in times else values
        for name, values in columns.items()
    })


def run(entities: pa.Table, events: pa.Table, aggregates: list[Aggregate], hop: int = HOUR) -> dict:
    result = aggregate_as_of(entities, events, AggregationSpec({"driver": "int64"}, hop, aggregates))
    return {a.output: result[a.output].to_pylist() for a in aggregates}


def test_the_picture_of_the_rule():
    """hop 1h, W 3h: at 10:20 the window reads 07:00 .. 10:20, both ends included."""
    events = table(
        driver=[1] * 6,
        event_timestamp=[at(6.99), at(7), at(8.5), at(10), at(10 + 1 / 3), at(10.34)],
        fare=[100.0, 1.0, 2.0, 4.0, 8.0, 16.0],
    )
    asked = [at(10 + 1 / 3), at(10.99), at(11), at(7) - timedelta(microseconds=1)]
    entities = table(driver=[1, 1, 1, 1], event_timestamp=asked)
    sums = run(entities, events, [Aggregate("s", "fare", "sum", 3 * HOUR, "float64")])["s"]
    # 10:20: 07:00 (tail, included) .. 10:20 (head, included); 10:59: + 10:20:24; 11:00: tail 08:00
    assert sums == [15.0, 31.0, 30.0, 100.0]


def test_empty_windows_and_unasked_rows():
    events = table(driver=[1, 1], event_timestamp=[at(0), at(1)], fare=[None, 2.5], n=[None, 7])
    entities = table(
        driver=pa.array([1, 2, None, 1], pa.int64()),
        event_timestamp=[at(0.5), at(5), at(5), None],
    )
    functions = ["count", "sum", "mean", "min", "max", "first", "last", "variance", "stddev"]
    aggregates = [Aggregate(f"fare_{f}", "fare", f, HOUR, "float64") for f in functions]
    aggregates += [Aggregate(f"n_{f}", "n", f, HOUR, "int64") for f in ("sum", "distinct_count")]
    values = run(entities, events, aggregates)
    # row 0: only a null fare in its window (skipped); row 1: no events at all; rows 2, 3: no key / no time
    assert values["fare_count"] == [0, 0, None, None]
    assert values["fare_sum"] == [0.0, 0.0, None, None]
    assert values["n_sum"] == [0, 0, None, None]
    assert values["n_distinct_count"] == [0, 0, None, None]
    for name in ("fare_mean", "fare_min", "fare_max", "fare_first", "fare_last", "fare_variance", "fare_stddev"):
        assert values[name] == [None, None, None, None], name


@pytest.mark.parametrize(("function", "dtype"), [
    ("count", "string"), ("sum", "int32"), ("sum", "float32"), ("mean", "int64"), ("min", "float32"),
    ("max", "timestamp"), ("first", "bool"), ("last", "string"), ("variance", "int32"), ("distinct_count", "bytes"),
])
def test_output_columns_have_the_documented_arrow_type(function, dtype):
    value = {"string": "a", "bytes": b"a", "bool": True, "timestamp": at(0)}.get(dtype, 1)
    events = table(driver=[1, 1], event_timestamp=[at(0), at(0)], v=pa.array([value, value], arrow_type(dtype)))
    entities = table(driver=[1], event_timestamp=[at(0)])
    result = aggregate_as_of(entities, events, AggregationSpec({"driver": "int64"}, HOUR, [
        Aggregate("out", "v", function, HOUR, dtype)
    ]))
    assert result["out"].type == arrow_type(output_dtype(function, dtype))


def test_first_and_last_follow_the_as_of_tie_rule():
    """(event, created) order, a null created lowest; full ties: the greatest value."""
    events = table(
        driver=[1] * 5,
        event_timestamp=[at(1), at(1), at(1), at(2), at(2)],
        created_timestamp=[None, at(3), at(3), at(2), at(2)],
        v=["null-created", "b", "a", "z", "y"],
    )
    entities = table(driver=[1, 1], event_timestamp=[at(1), at(2)])
    values = run(entities, events, [
        Aggregate("first", "v", "first", 3 * HOUR, "string"), Aggregate("last", "v", "last", 3 * HOUR, "string"),
    ])
    assert values == {"first": ["null-created", "null-created"], "last": ["b", "z"]}


@pytest.mark.parametrize("hours", [[0, 0], [0, 2]], ids=["within-a-tile", "across-tiles"])
def test_an_int_sum_that_overflows_raises_instead_of_wrapping(hours):
    events = table(driver=[1, 1], event_timestamp=[at(h) for h in hours], n=[2**62, 2**62])
    entities = table(driver=[1], event_timestamp=[at(2)])
    with pytest.raises(OverflowError, match="int64 sum overflows"):
        run(entities, events, [Aggregate("s", "n", "sum", 3 * HOUR, "int64")])


def test_variance_merges_stably_where_a_sum_of_squares_cancels():
    """Values near 1e9 whose spread is 1: sum-of-squares formulas lose every digit."""
    rng = np.random.default_rng(7)
    values = (1e9 + rng.integers(0, 3, 200)).astype(float).tolist()
    hours = sorted(rng.uniform(0, 20, 200).tolist())
    events = table(driver=[1] * 200, event_timestamp=[at(h) for h in hours], v=values)
    entities = table(driver=[1], event_timestamp=[at(20)])
    got = run(entities, events, [Aggregate("var", "v", "variance", 24 * HOUR, "float64")])["var"][0]
    exact = [Fraction(v) for v in values]
    mean = sum(exact) / len(exact)
    expected = float(sum((v - mean) ** 2 for v in exact) / (len(exact) - 1))
    assert math.isclose(got, expected, rel_tol=1e-7)
    squares = np.array(values)
    naive = (np.sum(squares * squares) - np.sum(squares) ** 2 / len(values)) / (len(values) - 1)
    assert not math.isclose(naive, expected, rel_tol=1e-2)  # what this test guards against


@given(
    hop=st.integers(1, 10**6),
    windows=st.integers(1, 50),
    time=st.integers(-(10**13), 10**13),
    event=st.integers(-(10**13), 10**13),
)
def test_the_tiles_a_window_reads_hold_exactly_the_events_it_covers(hop, windows, time, event):
    window = windows * hop
    assert floor_to_hop(time, hop) <= time < floor_to_hop(time, hop) + hop
    assert window <= time - tail(time, window, hop) < window + hop
    in_tiles = event // hop in tiles_covered(time, window, hop) and event <= time
    assert bool(covers(event, time, window, hop)) == in_tiles
    assert covers(np.array([event]), np.array([time]), window, hop)[0] == in_tiles


def test_importing_the_aggregation_package_loads_no_spark_redis_or_grpc():
    code = ("import sys, granero.aggregation.engine, granero.definitions.aggregation; "
            "print(sorted(m for m in ('pyspark', 'redis', 'grpc', 'py4j') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_spec_from_definitions_runs_with_their_names_and_hop():
    aggregations = [Aggregation(column="fare", function=f, window="3h") for f in ("sum", "last")]
    spec = AggregationSpec.of({"driver": "int64"}, aggregations, {"fare": "float64"}, resolve_hop(None, aggregations))
    assert spec.hop == 5 * 60 * 1_000_000
    events = table(driver=[1, 1], event_timestamp=[at(0), at(2)], fare=[1.5, 2.0])
    result = aggregate_as_of(table(driver=[1], event_timestamp=[at(2)]), events, spec)
    assert result.select(["fare_sum_3h", "fare_last_3h"]).to_pylist() == [{"fare_sum_3h": 3.5, "fare_last_3h": 2.0}]


def test_no_events_or_no_entity_rows():
    case = random_case(1)
    events, entities = events_table(case.events), entities_table(case.entities)
    no_events = aggregate_as_of(entities, events.slice(0, 0), case.spec)
    asked = [e["t"] is not None and e["a"] is not None and e["s"] is not None for e in case.entities]
    assert no_events["i64_count_0"].to_pylist() == [0 if a else None for a in asked]
    assert no_events["i64_mean_0"].null_count == len(asked)
    no_rows = aggregate_as_of(entities.slice(0, 0), events, case.spec)
    assert no_rows.num_rows == 0 and no_rows.schema.field("f32_min_0").type == pa.float32()
