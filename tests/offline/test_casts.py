"""The cast rule (offline/casts.py) through real Spark: every pair of the table, against an oracle.

Each (source type, dtype) pair the table allows becomes one feature of one view, materialized in
one job, and each value is compared with ``cast_oracle``; every pair it refuses goes into a second
view whose materialization must name it; every CHECKED pair must fail on its sample values that
the oracle says would change. A randomized test compares Spark's value check with the oracle.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero.definitions import Entity, FeatureView, Field, FileSource, TableSource
from granero.errors import MaterializationError
from granero.offline.casts import Rule, rule
from granero.offline.spark_casts import converted, value_would_change, would_change
from granero.types import SCALARS
from tests.offline import cast_oracle
from tests.offline.conftest import make_feature_store

pytestmark = pytest.mark.spark

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=1)
user = Entity(join_keys={"user_id": "int64"})

SAMPLES = {
    "tinyint": [0, -128, 127],
    "smallint": [-32768, 32767],
    "int": [-(2**31), 2**31 - 1, 16777217, 7],
    "bigint": [-(2**63), 2**63 - 1, 2**53 + 1, 2**31, 42],
    "float": [1.5, -2.0, 16777216.0],
    "double": [55.7, -2.0, 2.0**63, 1e300, float("nan"), 3.0],
    "decimal(9,0)": [Decimal(123456789), Decimal(-5)],
    "decimal(20,0)": [Decimal(2**63), Decimal(12)],
    "decimal(10,2)": [Decimal("12.25"), Decimal("-3.00")],
    "string": ["42", "55.7", "abc", "yes", "2026-01-02 03:04:05", "1e400", " 7 "],
    "boolean": [True, False],
    "binary": [b"\x00\xff"],
    "date": [date(2026, 1, 2)],
    "timestamp": [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)],
    "timestamp_ntz": [datetime(2026, 1, 2, 3, 4, 5)],
    "void": [None],
    "array<int>": [[1, None, 3], [16777217]],
    "array<double>": [[1.0, 2.5], [1.0, 2.0], [1e300]],
    "array<string>": [["1.5", "x"], ["1.5"]],
    "array<bigint>": [[2**53 + 1, 5], [5]],
    "array<boolean>": [[True]],
}
DTYPES = [*SCALARS, "list<int64>", "list<float32>", "list<float64>", "list<string>"]
PAIRS = list(itertools.product(SAMPLES, DTYPES))
ALLOWED = [p for p in PAIRS if rule(*p).allowed]
REFUSED = [p for p in PAIRS if not rule(*p).allowed]
CHECKED = [p for p in PAIRS if rule(*p).rule is Rule.CHECKED]


def verdicts(source: str, dtype: str) -> list[tuple[object, bool, object]]:
    """(value, converts exactly?, to what) per sample the oracle can judge."""
    judged = [(v, *cast_oracle.convert(v, source, dtype)) for v in SAMPLES[source]]
    return [(v, ok, result) for v, ok, result in judged if ok is not None]


def pair_frame(spark, pairs, column_values):
    """One column ``c<i>`` of the pair's source type per pair, holding ``column_values(pair)``."""
    columns = [column_values(p) for p in pairs]
    rows = max(1, *map(len, columns))
    padded = [c + [None] * (rows - len(c)) for c in columns]
    schema = ", ".join(
        ["user_id bigint", "ts timestamp", *[f"c{i} {s}" for i, (s, _) in enumerate(pairs)]]
    )
    data = [(n, T0, *[c[n] for c in padded]) for n in range(rows)]
    return spark.createDataFrame(data, schema)


def pair_view(table: str, pairs) -> FeatureView:
    return FeatureView(
        entities=[user],
        source=TableSource(table=table, timestamp_field="ts"),
        ttl="1d",
        features=[Field(name=f"c{i}", dtype=d) for i, (_, d) in enumerate(pairs)],
    )


def test_the_table_judges_every_pair_and_a_checked_pair_has_something_to_check():
    assert len(PAIRS) == len(ALLOWED) + len(REFUSED)
    assert all(rule(*p).reason for p in REFUSED)
    unjudged = [p for p in CHECKED if all(ok for _, ok, _ in verdicts(*p))]
    assert unjudged == [], "a CHECKED pair needs a sample that fails its check"
    inexact = [(p, v) for p in ALLOWED if rule(*p).rule is not Rule.CHECKED
               for v, ok, _ in verdicts(*p) if not ok]
    assert inexact == [], "a pair the table calls exact has a sample the oracle says changes"


def test_every_allowed_pair_materializes_its_exact_values(spark, tmp_path):
    good = lambda pair: [v for v, ok, _ in verdicts(*pair) if ok]  # noqa: E731
    pair_frame(spark, ALLOWED, good).createOrReplaceTempView("allowed_pairs")
    store = make_feature_store(
        tmp_path, {"user": user, "pairs": pair_view("allowed_pairs", ALLOWED)}, offline="parquet"
    )
    store.materialize(T0, END, sync_online=False)
    table = store.offline_store.read("pairs")
    shown = [
        f"unix_micros(c{i}) AS c{i}" if d == "timestamp" else f"c{i}"
        for i, (_, d) in enumerate(ALLOWED)
    ]
    rows = {r["user_id"]: r for r in table.selectExpr("user_id", *shown).collect()}
    for i, (source, dtype) in enumerate(ALLOWED):
        expected = [(v, result) for v, ok, result in verdicts(source, dtype) if ok]
        for n, (value, result) in enumerate(expected):
            assert_same(rows[n][f"c{i}"], result, value, source, dtype)


def assert_same(actual, expected, original, source: str, dtype: str) -> None:
    where = f"{source} {original!r} -> {dtype}"
    if dtype == "string" and original is not None:
        assert cast_oracle.text_means(actual, original, source), f"{where}: got {actual!r}"
    elif dtype == "list<string>" and original is not None:
        element = source[len("array<") : -1]
        pairs = zip(actual, original, strict=True)
        assert all(cast_oracle.text_means(a, o, element) for a, o in pairs), f"{where}: {actual!r}"
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), f"{where}: got {actual!r}"
    else:
        assert actual == expected, f"{where}: got {actual!r}, expected {expected!r}"


def test_every_refused_pair_is_named_before_any_job_runs(spark, tmp_path):
    pair_frame(spark, REFUSED, lambda pair: []).createOrReplaceTempView("refused_pairs")
    store = make_feature_store(
        tmp_path, {"user": user, "pairs": pair_view("refused_pairs", REFUSED)}, offline="parquet"
    )
    with pytest.raises(MaterializationError) as failure:
        store.materialize(T0, END, sync_online=False)
    message = str(failure.value)
    for i, (source, dtype) in enumerate(REFUSED):
        assert f"feature view 'pairs' column 'c{i}': {source} -> {dtype} (" in message
    assert not store.offline_store.exists("pairs")


def test_every_checked_pair_flags_each_value_that_would_change_and_no_other(spark):
    """The predicate of every checked cast, on every sample, in one job (good values pass too:
    the materialization above would have failed on them otherwise, this says so directly)."""
    from pyspark.sql import functions as F

    cases = [(p, v, ok) for p in CHECKED for v, ok, _ in verdicts(*p)]
    frame = pair_frame(spark, [p for p, _, _ in cases], lambda case: [])
    one_row = spark.createDataFrame([tuple(v for _, v, _ in cases)], frame.drop("user_id", "ts").schema)
    flags = one_row.select(*[
        would_change(F.col(f"c{i}"), *pair).alias(f"c{i}") for i, (pair, _, _) in enumerate(cases)
    ]).first()
    wrong = [(pair, value) for i, (pair, value, ok) in enumerate(cases) if flags[f"c{i}"] == ok]
    assert wrong == []
    assert sum(not ok for _, _, ok in cases) >= len(CHECKED)


@pytest.mark.parametrize(("source", "value", "dtype", "shown"), [
    ("double", 55.7, "int64", "double value 55.7 is not a whole number in the range of int64;"),
    ("string", "abc", "int32", "string value abc does not parse as int32;"),
    ("array<bigint>", [5, 2**53 + 1], "list<float64>",
     "bigint value 9007199254740993 has no exact value in float64;"),
])
def test_a_checked_cast_fails_the_job_naming_label_types_and_value(spark, source, value, dtype, shown):
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(value,)], f"v {source}")
    with pytest.raises(Exception, match="USER_RAISED_EXCEPTION") as failure:
        frame.select(converted(F.col("v"), source, dtype, "the label")).collect()
    assert f"the label: {shown}" in str(failure.value)


# -- randomized: Spark's value check against the oracle ----------------------------------------

RANDOM_PAIRS = [
    ("double", "int64"), ("double", "int32"), ("float", "int32"), ("bigint", "int32"),
    ("bigint", "float64"), ("bigint", "float32"), ("int", "float32"), ("double", "float32"),
    ("decimal(38,6)", "int64"), ("string", "int64"), ("string", "float64"), ("string", "bool"),
]
_EDGES = [2**63, 2**63 - 1, 2**63 - 1024, 2**53, 2**53 + 1, 2**31, 2**31 - 1, 2**24 + 1]
_INTEGERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.sampled_from([e for x in _EDGES for e in (x, -x)])
    .filter(lambda x: -(2**63) <= x < 2**63),
)
_DOUBLES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**64), 2**64).map(float),
    st.sampled_from([float(x) for x in _EDGES] + [-0.0, 0.5, 3.4028235e38, 3.5e38]),
)
_STRATEGIES = {
    "double": _DOUBLES,
    "float": st.floats(width=32),
    "bigint": _INTEGERS,
    "int": st.integers(-(2**31), 2**31 - 1),
    "decimal(38,6)": st.decimals(
        min_value=-(10**31), max_value=10**31, places=6, allow_nan=False, allow_infinity=False
    ),
    "string": st.text(alphabet="0123456789+-. eEinfatyrusl", max_size=8),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_value_check_agrees_with_the_oracle_on_random_values(spark, data):
    """One job per example: a column per pair, a row per drawn value."""
    from pyspark.sql import functions as F

    drawn = {p: data.draw(st.lists(_STRATEGIES[p[0]], min_size=1, max_size=8)) for p in RANDOM_PAIRS}
    frame = pair_frame(spark, RANDOM_PAIRS, lambda pair: drawn[pair])
    survives = [
        (~value_would_change(source, dtype)(F.col(f"c{i}"))).alias(f"ok{i}")
        for i, (source, dtype) in enumerate(RANDOM_PAIRS)
    ]
    rows = frame.select("user_id", *survives).collect()
    for i, pair in enumerate(RANDOM_PAIRS):
        for row in rows[: len(drawn[pair])]:
            value = drawn[pair][row["user_id"]]
            verdict, _ = cast_oracle.convert(value, *pair)
            if verdict is not None:
                assert row[f"ok{i}"] == verdict, f"{pair} {value!r}: Spark {row[f'ok{i}']}, oracle {verdict}"


# -- through a materialization of sources written by pandas ---------------------------------------


def pandas_view(directory, columns: dict, dtype: str = "int64", **changes) -> FeatureView:
    """A view of a source written by a plain ``to_parquet``: uid, ts (2 rows) and amount."""
    frame = pd.DataFrame({"uid": [1, 2], "ts": [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]})
    directory.mkdir(parents=True, exist_ok=True)
    frame.assign(**columns).to_parquet(directory / "part-0.parquet")
    return FeatureView(
        entities=[user],
        source=FileSource(path=str(directory), timestamp_field="ts", field_mapping={"uid": "user_id"}),
        ttl="1d",
        features=[Field(name="amount", dtype=dtype)],
        **changes,
    )


def amounts(store, name: str) -> list:
    return [r.amount for r in store.offline_store.read(name).orderBy("user_id").collect()]


def test_a_fraction_in_an_int64_column_fails_the_run_and_changes_nothing(spark, tmp_path):
    whole = pandas_view(tmp_path / "src", {"amount": [55.0, 12.0]})
    store = make_feature_store(tmp_path, {"user": user, "spend": whole})
    [done] = store.materialize(T0, END, sync_online=False)
    assert amounts(store, "spend") == [55, 12]
    pandas_view(tmp_path / "src", {"amount": [55.7, 12.0]})
    with pytest.raises(MaterializationError) as failure:
        store.materialize(T0, END, sync_online=False)
    assert (
        "feature view 'spend' column 'amount': double value 55.7 is not a whole number in the "
        "range of int64" in str(failure.value)
    )
    assert amounts(store, "spend") == [55, 12]
    assert store.offline_store.current_version("spend") == done.table_version


@pytest.mark.parametrize(("columns", "shown"), [
    ({"amount": ["12", "abc"]}, "column 'amount': string value abc does not parse as int64"),
    ({"amount": [1, 2], "ts": ["2026-01-01 01:00:00", "yesterday"]},
     "column 'ts' (as 'event_timestamp'): string value yesterday does not parse as timestamp"),
])
def test_text_that_does_not_parse_is_named_with_its_column(spark, tmp_path, columns, shown):
    store = make_feature_store(tmp_path, {"user": user, "spend": pandas_view(tmp_path / "src", columns)})
    with pytest.raises(MaterializationError, match="USER_RAISED_EXCEPTION") as failure:
        store.materialize(T0, END, sync_online=False)
    assert f"feature view 'spend' {shown}" in str(failure.value)
    assert store.registry.materialized() == {}


def test_a_lossy_cast_written_as_a_transformation_is_taken_as_meant(spark, tmp_path):
    truncated = pandas_view(
        tmp_path / "src", {"amount": [55.7, -1.5]}, transformations={"amount": "CAST(amount AS BIGINT)"}
    )
    store = make_feature_store(tmp_path, {"user": user, "spend": truncated}, offline="parquet")
    store.materialize(T0, END, sync_online=False)
    assert amounts(store, "spend") == [55, -1]


def test_a_refused_type_is_named_before_any_job(spark, tmp_path):
    flags = pandas_view(tmp_path / "src", {"amount": [True, False]})
    store = make_feature_store(tmp_path, {"user": user, "spend": flags}, offline="parquet")
    with pytest.raises(MaterializationError) as failure:
        store.materialize(T0, END, sync_online=False)
    assert "feature view 'spend' column 'amount': boolean -> int64 (booleans and numbers" in str(failure.value)
    assert not store.offline_store.exists("spend")
