"""The Aggregation definition and the checks a view will run on its aggregations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from granero.definitions.aggregation import (
    INPUT_DTYPES,
    Aggregation,
    check_aggregations,
    default_hop,
    output_dtype,
    resolve_hop,
    window_label,
)
from granero.types import SCALARS

COLUMNS = {"fare": "float64", "trips": "int64", "city": "string", "at": "timestamp", "ok": "bool"}


def test_name_defaults_to_column_function_window():
    assert Aggregation(column="fare", function="mean", window="7d").name == "fare_mean_7d"
    assert Aggregation(column="fare", function="sum", window="90m").name == "fare_sum_90m"
    assert Aggregation(column="fare", function="max", window=timedelta(hours=36)).name == "fare_max_36h"
    assert Aggregation(column="fare", function="min", window="2w").name == "fare_min_14d"
    assert Aggregation(column="fare", function="min", window="1h", name="x").name == "x"


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"column": "fare", "function": "median", "window": "1h"}, "function", "count"),
    ({"column": "fare", "function": "sum", "window": "0s"}, "window", "positive"),
    ({"column": "fare", "function": "sum", "window": timedelta(milliseconds=1500)}, "window", "whole"),
    ({"column": "fare", "function": "sum", "window": "1h", "name": "bad name"}, "name", "identifier"),
    ({"column": "", "function": "sum", "window": "1h"}, "column", "empty"),
    ({"column": "fare", "function": "sum", "window": "1h", "filter": "x > 1"}, "filter", "Extra"),
])
def test_invalid_fields_are_named(fields, field, words):
    with pytest.raises(ValidationError) as caught:
        Aggregation(**fields)
    error = caught.value.errors()[0]
    assert error["loc"][0] == field and words in str(caught.value)


@pytest.mark.parametrize(("windows", "hop"), [
    (["1h", "24h", "7d"], "1m"),
    (["7d"], "1h"),
    (["30d"], "1d"),
    (["2h"], "5m"),
    (["10m"], "1s"),
    (["25h", "3d"], "1h"),
    (["7m"], "1s"),
])
def test_default_hop_spans_the_smallest_window_with_at_least_24_tiles(windows, hop):
    parsed = [Aggregation(column="fare", function="sum", window=w).window for w in windows]
    chosen = default_hop(parsed)
    assert window_label(chosen) == hop
    assert all(w % chosen == timedelta(0) for w in parsed)
    assert chosen == timedelta(seconds=1) or min(parsed) >= 24 * chosen


def test_a_declared_hop_must_divide_every_window_and_the_error_names_it():
    aggregations = [Aggregation(column="fare", function="sum", window=w) for w in ("2h", "90m")]
    assert resolve_hop(timedelta(minutes=30), aggregations) == timedelta(minutes=30)
    assert resolve_hop(None, aggregations) == timedelta(minutes=1)
    with pytest.raises(ValueError, match=r"aggregations\[1\]\.window: 90m is not a multiple of the hop 1h"):
        resolve_hop(timedelta(hours=1), aggregations)
    with pytest.raises(ValueError, match=r"^hop: .*positive"):
        resolve_hop(timedelta(0), aggregations)
    with pytest.raises(ValueError, match=r"^aggregations: "):
        resolve_hop(None, [])


@pytest.mark.parametrize(("aggregation", "message"), [
    (Aggregation(column="tips", function="sum", window="1h"), r"aggregations\[1\]\.column: unknown column 'tips'"),
    (Aggregation(column="city", function="mean", window="1h"),
     r"aggregations\[1\]\.function: mean does not apply to column 'city' of dtype string"),
    (Aggregation(column="fare", function="distinct_count", window="1h"), r"aggregations\[1\]\.function"),
    (Aggregation(column="trips", function="count", window="1h", name="fare_sum_1h"),
     r"aggregations\[1\]\.name: 'fare_sum_1h' is already"),
])
def test_check_aggregations_names_the_field(aggregation, message):
    first = Aggregation(column="fare", function="sum", window="1h")
    with pytest.raises(ValueError, match=message):
        check_aggregations([first, aggregation], COLUMNS)


def test_names_must_not_collide_with_the_views_features():
    with pytest.raises(ValueError, match=r"aggregations\[0\]\.name"):
        check_aggregations([Aggregation(column="fare", function="sum", window="1h")], COLUMNS, taken=["fare_sum_1h"])
    check_aggregations([Aggregation(column=c, function="count", window="1h") for c in COLUMNS], COLUMNS)


def test_output_dtypes_follow_the_table():
    table = {
        ("count", "string"): "int64", ("distinct_count", "string"): "int64",
        ("sum", "int32"): "int64", ("sum", "int64"): "int64", ("sum", "float32"): "float64",
        ("mean", "int64"): "float64", ("variance", "int32"): "float64", ("stddev", "float32"): "float64",
        ("min", "float32"): "float32", ("max", "timestamp"): "timestamp",
        ("first", "bool"): "bool", ("last", "bytes"): "bytes",
    }
    for (function, dtype), expected in table.items():
        assert dtype in INPUT_DTYPES[function]
        assert output_dtype(function, dtype) == expected
    assert all(set(accepted) <= set(SCALARS) for accepted in INPUT_DTYPES.values())
