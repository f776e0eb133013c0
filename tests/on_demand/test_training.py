"""On-demand features in training sets: the oracle per entity row, in process and on Spark.

One repo (``training_repo``) is applied and materialized once; each test asks for training rows
next to the point-in-time input features, through the in-process engine, the Spark engine
(pandas out) and the Spark DataFrame path (``mapInArrow``), and compares them with the oracle
and with each other, value for value.
"""

from __future__ import annotations

import json
import math
import random
import re

import pandas as pd
import pyarrow as pa
import pytest

from granero.errors import RetrievalError, TransformCodeChanged, TransformError
from granero.feature_store import FeatureStore
from granero.offline.pandas_frames import pandas_frame
from granero.offline.spark_errors import worker_error
from tests.on_demand.training_repo import ON_DEMAND, WINDOW, build_repo, entity_rows, expected

pytestmark = pytest.mark.spark

REFS = ["every_dtype:*", "row_total:total", "stats:f_int"]


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    repo, source = build_repo(tmp_path_factory.mktemp("od_training") / "repo")
    store = FeatureStore(repo)
    store.apply()
    store.materialize(*WINDOW, sync_online=False)
    yield store, source
    store.close()


def frame_of(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["driver_id", "event_timestamp", "r_int", "r_double", "r_str", "r_bytes",
                                        "label"])
    frame["r_int"] = frame["r_int"].astype("Int64")
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def assert_matches_oracle(result: pd.DataFrame, rows: list[dict], source: list[dict]) -> None:
    assert len(result) == len(rows)
    table = pa.Table.from_pandas(result[list(expected(source, rows[0]))] if rows else result, preserve_index=False)
    for index, row in enumerate(rows):
        want = expected(source, row)
        got = {name: table[name][index].as_py() for name in want}
        for name, value in want.items():
            if isinstance(value, float) and isinstance(got[name], float):
                assert got[name] == value or (math.isnan(value) and math.isnan(got[name])), (index, name)
            else:
                assert got[name] == value, (index, name, got[name], value)


@pytest.mark.parametrize("n", [1, 1000])
def test_both_engines_give_the_oracle_rows_and_identical_frames(trained, n):
    store, source = trained
    rows = entity_rows(random.Random(n), n, drivers=12)
    given = frame_of(rows)
    local = store.get_historical_features_pandas(given, REFS, engine="local")
    spark_made = store.get_historical_features_pandas(given, REFS, engine="spark")
    pd.testing.assert_frame_equal(local, spark_made)
    assert list(local.columns) == [*given.columns, *[f"every_dtype__{o}" for o in
                                                     ("o_int", "o_double", "o_float", "o_bool", "o_str", "o_bytes",
                                                      "o_ts", "o_list")], "row_total__total", "stats__f_int"]
    pd.testing.assert_frame_equal(local[given.columns], given)  # the caller's columns as given
    assert_matches_oracle(local, rows, source)


def test_the_spark_dataframe_path_computes_the_same_rows_with_map_in_arrow(trained):
    store, source = trained
    rows = entity_rows(random.Random(5), 300, drivers=12)
    given = frame_of(rows).assign(row_id=range(300))
    local = store.get_historical_features_pandas(given, REFS, full_feature_names=False, engine="local")
    frame = store.get_historical_features(given, REFS, full_feature_names=False)
    assert "MapInArrow" in frame._jdf.queryExecution().analyzed().toString()
    made = pandas_frame(frame.toArrow()).sort_values("row_id").reset_index(drop=True)
    features = ["o_int", "o_double", "o_float", "o_bool", "o_str", "o_bytes", "o_ts", "o_list", "total", "f_int"]
    assert list(made.columns)[-len(features):] == features
    pd.testing.assert_frame_equal(made[features], local[features].reset_index(drop=True))


def test_no_entity_rows_give_typed_empty_columns(trained):
    store, _ = trained
    empty = frame_of([])
    local = store.get_historical_features_pandas(empty, REFS, engine="local")
    assert len(local) == 0 and str(local["every_dtype__o_int"].dtype) == "Int64"
    pd.testing.assert_frame_equal(local, store.get_historical_features_pandas(empty, REFS, engine="spark"))


def test_the_manifest_records_each_transforms_hash(trained, tmp_path):
    store, _ = trained
    given = frame_of(entity_rows(random.Random(1), 3, drivers=12))
    store.get_historical_features_pandas(given, ["row_total:total"], manifest_path=tmp_path / "m.json", engine="local")
    manifest = json.loads((tmp_path / "m.json").read_text())
    registered = store.registered().on_demand_feature_views["row_total"].code.source_hash
    assert manifest["on_demand"] == {"row_total": registered}
    assert manifest["features"] == ["row_total:total"] and manifest["columns"] == ["row_total__total"]
    assert set(manifest["table_versions"]) == {"stats"}  # the input view was read, though not returned


def test_a_missing_request_column_is_named(trained):
    store, _ = trained
    given = frame_of(entity_rows(random.Random(2), 3, drivers=12)).drop(columns=["r_str"])
    for engine in ("local", "spark"):
        with pytest.raises(RetrievalError, match="'every_dtype' needs request field 'r_str' as a column"):
            store.get_historical_features_pandas(given, ["every_dtype:o_int"], engine=engine)
    with pytest.raises(RetrievalError, match="needs request field 'r_str'"):
        store.get_historical_features(given, ["every_dtype:o_int"])
    as_spark = store.spark.createDataFrame(given.astype({"r_int": "float64"}))
    with pytest.raises(RetrievalError, match="needs request field 'r_str'"):  # Spark rows, pandas out
        store.get_historical_features_pandas(as_spark, ["every_dtype:o_int"])


@pytest.mark.parametrize(("r_int", "words"), [
    (666, r"raised ValueError: r_int 666 is not a trip"),
    (777, r"output 'o_bytes' \(declared bytes\): \d values for a batch of \d rows"),
    (888, r"output 'o_int' \(declared int64\): double does not convert to int64 without loss: value (0.0625|55.5) "),
])
def test_a_failing_transform_is_the_same_transform_error_on_every_path(trained, r_int, words):
    store, _ = trained
    rows = entity_rows(random.Random(3), 3, drivers=12)
    rows[1]["r_int"] = r_int
    rows[0]["r_int"] = rows[2]["r_int"] = 1
    given = frame_of(rows)
    expected = "on-demand feature view 'every_dtype': transform on_demand:combine " + words
    for engine in ("local", "spark"):
        with pytest.raises(TransformError, match=expected):
            store.get_historical_features_pandas(given, REFS, engine=engine)
    frame = store.get_historical_features(given, REFS)  # a lazy plan: the caller's action fails
    with pytest.raises(Exception) as raised:  # noqa: B017 -- Spark's own exception class
        frame.toArrow()
    assert isinstance(worker_error(str(raised.value)), TransformError)
    assert re.search("granero.errors.TransformError: " + expected, str(raised.value))


def test_a_transform_changed_after_apply_is_refused_for_training(trained):
    store, _ = trained
    path = store.repo_path / "on_demand.py"
    path.write_text(ON_DEMAND.replace("pc.multiply(c[\"f_int\"], 2)", "pc.multiply(c[\"f_int\"], 3)"))
    try:
        given = frame_of(entity_rows(random.Random(4), 2, drivers=12))
        with pytest.raises(TransformCodeChanged, match="'every_dtype'.*is not the code applied.*granero apply"):
            store.get_historical_features_pandas(given, ["every_dtype:o_int"], engine="local")
        store.get_historical_features_pandas(given, ["row_total:total"], engine="local")  # unchanged: fine
    finally:
        path.write_text(ON_DEMAND)
