"""Training retrieval of windowed aggregates end to end, against the brute-force oracle.

Random events (``tests.aggregation.random_events``: ties, events on window and hop boundaries,
one microsecond either side, late arrivals, nulls, NaN and ±0.0, composite (int64, string) keys,
times before 1970) are written as a source, materialized into an aggregate view's offline table
(through a filter, a transformation and a checked cast) on both backends, and asked for through
both engines. Many seeds share one view: each seed's events and entity rows get their own keys.

What is asserted:

- both engines give identical frames, bit for bit (floats compared by their bits): they call the
  same ``aggregate_as_of``, the Spark engine once per key bucket, so nothing may differ;
- the Spark DataFrame (nulls and NaN kept apart) equals ``aggregate_as_of`` run in process on
  the raw events, bit for bit: materialization loses nothing and adds nothing;
- the values equal the oracle's: exactly, except floating sums, means and variances, which the
  oracle computes with ``math.fsum`` (correctly rounded) while the engine sums tile by tile, so
  they agree within 1e-9 relative (the documented order of summation is the engine's).
"""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from granero.aggregation.engine import Aggregate, AggregationSpec, aggregate_as_of
from granero.definitions import Aggregation, Entity, FeatureView, Field, FileSource
from granero.definitions.aggregation import INPUT_DTYPES
from tests.aggregation.oracle import oracle
from tests.aggregation.random_events import (
    COLUMNS,
    KEYS,
    SECOND,
    _entity,
    _event,
    events_table,
    frame,
)
from tests.aggregation.test_engine_oracle import same
from tests.offline.conftest import BACKENDS, make_feature_store

pytestmark = pytest.mark.spark

SEEDS = range(12)
VIEWS = {
    # name: (hop, windows, origins a seed picks from)
    "fine": (10 * SECOND, [10 * SECOND, 30 * SECOND, 80 * SECOND], [-4 * 10 * SECOND - 7, 0]),
    "hourly": (3600 * SECOND, [3600 * SECOND, 5 * 3600 * SECOND], [1_767_225_600 * SECOND]),
}
START, END = datetime(1960, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
FILTERED_I32 = 7
"""The view's filter drops events whose i32 is 7 (the oracle drops them by hand)."""


def aggregates(windows: list[int]) -> list[Aggregate]:
    """Every (column, function) that fits, over every window, plus an event count (a key)."""
    found = [
        Aggregate(f"{column}_{function}_{i}", column, function, window, dtype)
        for column, dtype in COLUMNS.items()
        for function, accepted in INPUT_DTYPES.items() if dtype in accepted
        for i, window in enumerate(windows)
    ]
    return found + [Aggregate(f"events_{i}", "a", "count", w, "int64") for i, w in enumerate(windows)]


def history(name: str) -> tuple[list[dict], list[dict]]:
    """Events and entity rows of every seed, each seed's keys apart (``a`` offset by seed)."""
    hop, windows, origins = VIEWS[name]
    events, entities = [], []
    for seed in SEEDS:
        rng = random.Random(f"{name}-{seed}")
        origin = rng.choice(origins)
        mine = [_apart(_event(rng, origin, hop, 11), seed) for _ in range(60)]
        times = [e["ts"] for e in mine if e["ts"] is not None]
        events += mine
        entities += [_apart(_entity(rng, origin, hop, windows, times), seed) for _ in range(30)]
    return events, entities


def _apart(record: dict, seed: int) -> dict:
    return {**record, "a": None if record["a"] is None else record["a"] + 1000 * seed}


def write_source(path, events: list[dict]) -> None:
    """The events as a source: i64 as ``raw_i64 = i64 - 1`` (a transformation adds 1 back), i32
    stored as int64 (materialization casts it back, checked)."""
    table = events_table(events)
    raw = pa.array([None if e["i64"] is None else e["i64"] - 1 for e in events], pa.int64())
    table = table.drop_columns(["i64"]).append_column("raw_i64", raw)
    table = table.set_column(table.schema.get_field_index("i32"), "i32", table["i32"].cast(pa.int64()))
    path.mkdir(parents=True)
    pq.write_table(table, path / "events.parquet")


def aggregate_view(name: str, source: str) -> FeatureView:
    hop, windows, _ = VIEWS[name]
    return FeatureView(
        name=name,
        entities=["number", "text"],
        source=FileSource(path=source, timestamp_field="event_timestamp", created_timestamp_field="created_timestamp"),
        features=[Field(name=c, dtype=d) for c, d in COLUMNS.items()],
        transformations={"i64": "raw_i64 + 1"},
        filter=f"i32 IS NULL OR i32 <> {FILTERED_I32}",
        aggregations=[
            Aggregation(column=a.column, function=a.function, window=timedelta(microseconds=a.window), name=a.output)
            for a in aggregates(windows)
        ],
        hop=timedelta(microseconds=hop),
    )


def definitions(root) -> dict:
    found = {"number": Entity(join_keys={"a": "int64"}), "text": Entity(join_keys={"s": "string"})}
    for name in VIEWS:
        write_source(root / "sources" / name, history(name)[0])
        found[name] = aggregate_view(name, str(root / "sources" / name))
    return found


def entity_frame(entities: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "a": pd.array([e["a"] for e in entities], dtype="Int64"),
        "s": pd.array([e["s"] for e in entities], dtype=object),
        "event_timestamp": pd.to_datetime([e["t"] for e in entities], unit="us", utc=True),
        "label": np.arange(len(entities)),
    })


@pytest.fixture(scope="module", params=BACKENDS)
def aggregate_store(request, spark, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"aggregates_{request.param}")
    store = make_feature_store(root, definitions(root), request.param)
    store.materialize(START, END, sync_online=False)
    return store


@pytest.mark.parametrize("name", list(VIEWS))
def test_both_engines_equal_the_oracle_and_each_other(spark, aggregate_store, name):
    """Also through a Spark DataFrame whose int64 key is an int column (cast before hashing)."""
    from pyspark.sql import functions as F

    events, entities = history(name)
    hop, windows, _ = VIEWS[name]
    asked = aggregates(windows)
    refs = [f"{name}:{a.output}" for a in asked]
    given = entity_frame(entities)
    local, spark_made = (
        aggregate_store.get_historical_features_pandas(given, refs, full_feature_names=False, engine=engine)
        for engine in ("local", "spark")
    )
    assert local.attrs["granero_engine"] == "local" and spark_made.attrs["granero_engine"] == "spark"
    assert_identical(local, spark_made)
    pd.testing.assert_frame_equal(local[list(given.columns)], given)
    narrow = spark.createDataFrame(given).withColumn("a", F.col("a").cast("int"))  # keys cast before hashing
    spark_rows = aggregate_store.get_historical_features(narrow, refs, full_feature_names=False).toArrow()
    spark_rows = spark_rows.sort_by("label")
    kept = [e for e in events if e["i32"] != FILTERED_I32]
    direct = aggregate_as_of(_entities_arrow(entities), events_table(kept), AggregationSpec(KEYS, hop, asked))
    for a in asked:
        assert bits(spark_rows[a.output].to_pylist()) == bits(direct[a.output].to_pylist()), a.output
    problems = mismatches(oracle(frame(entities), frame(kept), list(KEYS), hop, asked), spark_rows, asked)
    assert not problems, "\n".join(problems[:10])


def _entities_arrow(entities: list[dict]) -> pa.Table:
    times = pa.array([e["t"] for e in entities], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.table({"a": pa.array([e["a"] for e in entities], pa.int64()), "s": [e["s"] for e in entities],
                     "event_timestamp": times})


def mismatches(expected: dict, result: pa.Table, asked: list[Aggregate]) -> list[str]:
    found = []
    for a in asked:
        column = result[a.output]
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        found += [
            f"{a.output} row {i}: expected {e!r}, got {v!r}"
            for i, (e, v) in enumerate(zip(expected[a.output], column.to_pylist(), strict=True)) if not same(e, v)
        ]
    return found


def bits(values: list) -> list:
    """Floats by their bits (NaN, -0.0 and 0.0 told apart), everything else as is."""
    return [struct.pack("<d", v) if isinstance(v, float) else v for v in values]


def assert_identical(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Same columns, dtypes and values; floats bit for bit."""
    assert list(left.columns) == list(right.columns)
    assert list(left.dtypes) == list(right.dtypes)
    for column in left.columns:
        a, b = left[column], right[column]
        if a.dtype.kind == "f":
            assert np.array_equal(a.to_numpy().view(np.int64), b.to_numpy().view(np.int64)), column
        else:
            assert a.isna().tolist() == b.isna().tolist(), column
            assert a[a.notna()].tolist() == b[b.notna()].tolist(), column


def test_the_oracle_test_sees_the_edges():
    """The histories hold what the suite claims: ties, boundary events, late events, nulls."""
    events, entities = history("fine")
    hop = VIEWS["fine"][0]
    times = [e["ts"] for e in events if e["ts"] is not None]
    full_ties = len(times) - len({(e["a"], e["s"], e["ts"], e["created"]) for e in events if e["ts"] is not None})
    assert full_ties > 0
    assert any(t % hop == 0 for t in times) and any(t % hop == hop - 1 for t in times)
    assert any(e["created"] is not None and e["created"] - e["ts"] >= 10 * hop for e in events)
    assert any(t < 0 for t in times)
    assert any(e["t"] in set(times) for e in entities)
    assert sum(e["f64"] is None for e in events) and sum(isinstance(e["f64"], float) and math.isnan(e["f64"])
                                                         for e in events)
