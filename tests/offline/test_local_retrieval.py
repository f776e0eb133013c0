"""The in-process (Arrow) engine: the same answers as the oracle and as the Spark engine.

Layers, fastest first: ``as_of_join_arrow`` against the brute-force oracle with no Spark at all;
each backend's ``read_arrow`` / ``count_rows`` against Spark's read of the same table; schema
evolution, time travel, empty requests, and the ``auto`` choice of engine. Both engines on random
histories and random caller dtypes: ``test_engines_agree``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from granero.config import RepoConfig
from granero.definitions import Entity, FeatureView, Field, FileSource, compile_definitions
from granero.definitions.refs import resolve_features
from granero.errors import RetrievalError
from granero.feature_store import FeatureStore
from granero.offline import entity_rows, retrieval
from granero.offline.as_of_join import AsOfSpec
from granero.offline.delta import DeltaConfig, DeltaStore
from granero.offline.local_as_of import as_of_join_arrow
from granero.offline.retrieval import ENGINE_ATTR, RetrievalConfig, choose_engine
from granero.offline.schema import utc_date
from granero.offline.tables import build_offline_store
from granero.registry import Interval
from granero.types import arrow_type
from tests.offline.conftest import BACKENDS, make_feature_store, offline_config
from tests.offline.oracle import OracleView, expected_values, version_order
from tests.offline.random_data import FEATURE_DTYPES, KEY_DTYPES, VIEWS, as_time, generate

UTC_MICROS = pa.timestamp("us", tz="UTC")
REQUESTED = {"pair": ["f_list", "f_double", "f_int"], "text": ["f_bool", "f_str"], "single": ["f_int"]}


# -- as_of_join_arrow against the oracle: no Spark ------------------------------------------------


def without_full_ties(rows: list[dict], view: OracleView) -> list[dict]:
    """What materialization keeps: per (keys, event, created), the greatest row by values."""
    kept: dict[tuple, dict] = {}
    for row in rows:
        tie = (*[row[k] for k in view.keys], row["event"], row["created"])
        if tie not in kept or version_order(row, view) > version_order(kept[tie], view):
            kept[tie] = row
    return list(kept.values())


def arrow_view_table(view: OracleView, rows: list[dict]) -> pa.Table:
    columns = {k: pa.array([r[k] for r in rows], arrow_type(KEY_DTYPES[k])) for k in view.keys}
    columns["event_timestamp"] = pa.array([as_time(r["event"]) for r in rows], UTC_MICROS)
    columns["created_timestamp"] = pa.array([as_time(r["created"]) for r in rows], UTC_MICROS)
    for f in view.features:
        columns[f] = pa.array([r[f] for r in rows], arrow_type(FEATURE_DTYPES[f]))
    return pa.table(columns)


def arrow_entities(entities: list[dict]) -> pa.Table:
    return pa.table({
        "row": pa.array([e["row"] for e in entities], pa.int32()),
        "a": pa.array([e["a"] for e in entities], pa.int64()),
        "b": pa.array([e["b"] for e in entities], pa.int32()),
        "s": pa.array([e["s"] for e in entities], pa.string()),
        "t": pa.array([e["t"] for e in entities], pa.string()),
        "event_timestamp": pa.array([as_time(e["ts"]) for e in entities], UTC_MICROS),
        "label": pa.array([e["label"] for e in entities], pa.int32()),
    })


def arrow_spec(view: OracleView) -> AsOfSpec:
    return AsOfSpec(
        {k: KEY_DTYPES[k] for k in view.keys},
        timedelta(microseconds=view.ttl),
        {f: f"{view.name}__{f}" for f in REQUESTED[view.name]},
    )


def test_as_of_join_arrow_matches_the_oracle_row_by_row_in_input_order():
    hits = misses = 0
    for seed in range(40):
        entities, tables = generate(seed)
        joined = given = arrow_entities(entities)
        for name, view in VIEWS.items():
            table = arrow_view_table(view, without_full_ties(tables[name], view))
            joined = as_of_join_arrow(joined, table, arrow_spec(view))
            for feature, output in arrow_spec(view).outputs.items():
                assert joined.schema.field(output).type == table.schema.field(feature).type
        assert joined.select(given.column_names).equals(given)  # entity rows unchanged, in order
        for entity, row in zip(entities, joined.to_pylist(), strict=True):
            for name, view in VIEWS.items():
                expected = expected_values(entity, tables[name], view, REQUESTED[name])
                actual = [row[f"{name}__{f}"] for f in REQUESTED[name]]
                assert actual == expected, (seed, entity, name)
                hits, misses = hits + (expected[0] is not None), misses + (expected[0] is None)
    assert hits > 500 and misses > 500  # both cases exercised


def test_boundaries_are_inclusive_and_null_values_are_carried_in_process():
    """The documented rule on a hand-made history (ttl 10 s), as in the Spark join's test."""
    table = pa.table({
        "k": pa.array([1, 1, 2, 2, None, 4], pa.int64()),
        "event_timestamp": pa.array([as_time(t) for t in (0, 10_000_000, 5, 5, 5, 0)], UTC_MICROS),
        "created_timestamp": pa.array([None, None, as_time(6), None, None, None], UTC_MICROS),
        "v": pa.array([1.0, None, 2.0, 3.0, 9.0, 4.0], pa.float32()),
    })
    cases = [
        (1, 0, "at event"),
        (1, 9_999_999, "inside"),
        (1, 10_000_000, "null value"),
        (1, 20_000_001, "past ttl"),
        (4, 10_000_000, "at ts - ttl"),
        (4, 10_000_001, "just past ttl"),
        (1, -1, "before any data"),
        (2, 5, "created wins"),
        (3, 5, "no history"),
        (None, 5, "null key"),
        (1, None, "null ts"),
    ]
    entities = pa.table({
        "k": pa.array([c[0] for c in cases], pa.int32()),  # cast to the key's int64
        "event_timestamp": pa.array([as_time(c[1]) for c in cases], UTC_MICROS),
        "case": [c[2] for c in cases],
    })
    joined = as_of_join_arrow(entities, table, AsOfSpec({"k": "int64"}, timedelta(seconds=10), {"v": "v"}))
    assert joined.schema.field("v").type == pa.float32()
    assert dict(zip(joined["case"].to_pylist(), joined["v"].to_pylist(), strict=True)) == {
        "at event": 1.0,
        "inside": 1.0,
        "null value": None,
        "past ttl": None,
        "at ts - ttl": 4.0,
        "just past ttl": None,
        "before any data": None,
        "created wins": 2.0,
        "no history": None,
        "null key": None,
        "null ts": None,
    }


def test_composite_keys_compare_typed_values_not_concatenations():
    table = pa.table({
        "s": ["a_b", "a"],
        "t": ["c", "b_c"],
        "event_timestamp": pa.array([as_time(0)] * 2, UTC_MICROS),
        "created_timestamp": pa.array([None, None], UTC_MICROS),
        "v": [1, 2],
    })
    entities = pa.table({
        "s": ["a", "a_b", "a_bc"],
        "t": ["b_c", "c", ""],
        "event_timestamp": pa.array([as_time(1)] * 3, UTC_MICROS),
    })
    spec = AsOfSpec({"s": "string", "t": "string"}, timedelta(seconds=1), {"v": "out"})
    assert as_of_join_arrow(entities, table, spec)["out"].to_pylist() == [2, 1, None]


def test_finer_than_microsecond_times_are_truncated_toward_zero_like_spark():
    """Around the epoch, where truncating differs from flooring (Spark truncates, see below)."""
    table = pa.table({
        "k": [1, 1],
        "event_timestamp": pa.array([-1, 0], pa.int64()).cast(UTC_MICROS),
        "created_timestamp": pa.array([None, None], UTC_MICROS),
        "v": [-1, 0],
    })
    entities = pa.table({"k": [1, 1, 1], "event_timestamp": pa.array([999, -1, -1001], pa.timestamp("ns"))})
    joined = as_of_join_arrow(entities, table, AsOfSpec({"k": "int64"}, timedelta(days=1), {"v": "v"}))
    assert joined["v"].to_pylist() == [0, 0, -1]  # 0.999 µs -> 0; -0.001 µs -> 0; -1.001 µs -> -1


def test_entity_rows_from_pandas_become_what_spark_makes_of_them(spark):
    """``entity_table`` (local) against Spark's own pandas conversion, through the shared
    ``pandas_frame``: same values, same dtypes, nanoseconds truncated the same way."""

    frame = pd.DataFrame({
        "event_timestamp": pd.to_datetime(
            ["2026-01-01 00:00:00.000001999", "1969-12-31 23:59:59.999999001", "1960-01-01 00:00:00.0000005", None]
        ),
        "paris": pd.to_datetime(["2026-01-01 01:00:00.000000999"] * 4).tz_localize("Europe/Paris"),
        "a": pd.array([1, None, 3, 4], dtype="Int64"),
        "b": np.array([1, 2, 3, 4], dtype="int32"),
        "i8": np.array([1, 2, 3, 4], dtype="int8"),
        "s": ["x", None, "y", "z"],
        "st": pd.array(["a", None, "b", "c"], dtype="string"),
        "f": [1.0, np.nan, 2.0, 3.0],
        "f32": np.array([1, 2, 3, 4], dtype="float32"),
        "bo": [True, False, True, False],
        "nb": pd.array([True, None, False, True], dtype="boolean"),
        "by": [b"x", b"", None, b"z"],
        "cat": pd.Series(["u", "v", None, "u"], dtype="category"),
        "icat": pd.Series([1, None, 2, 1], dtype="category"),
        "nothing": [None] * 4,
    })
    assert isinstance(entity_rows.entity_types(frame), dict)  # every column suits the local engine
    local = retrieval.pandas_frame(entity_rows.entity_table(frame, {"nothing": "int64"}))
    # Spark's own conversion (which fails on a null in a category of ints) agrees where it works,
    own = frame.drop(columns=["icat", "nothing"])
    through_spark = retrieval.pandas_frame(spark.createDataFrame(entity_rows._as_utc(own)).toArrow())
    pd.testing.assert_frame_equal(local[own.columns], through_spark)
    # and the Spark engine's conversion gives exactly what the local engine joins.
    ours = retrieval.pandas_frame(entity_rows.from_pandas(spark, frame, {"nothing": "int64"}).toArrow())
    pd.testing.assert_frame_equal(local, ours)
    assert str(local["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert str(local["a"].dtype) == "Int64" and str(local["nb"].dtype) == "boolean"
    assert str(local["icat"].dtype) == "Int64" and str(local["nothing"].dtype) == "Int64"


# -- the backends' in-process reads ---------------------------------------------------------------

DAY1 = datetime(2026, 1, 1, tzinfo=UTC)
TABLE_SCHEMA = "k bigint, event_timestamp timestamp, created_timestamp timestamp, v double"


def _table_frame(spark, rows: list[tuple[int | None, float, float | None]], extra: bool = False):
    """Rows (key, event hour, value) in table layout; ``extra`` adds a later column w = 10 v."""
    from pyspark.sql import functions as F

    data = [(k, DAY1 + timedelta(hours=h), None, v) for k, h, v in rows]
    frame = spark.createDataFrame(data, TABLE_SCHEMA)
    if extra:
        frame = frame.withColumn("w", F.col("v") * 10)
    return frame.withColumn("event_date", utc_date(F.col("event_timestamp")))


@pytest.fixture(params=BACKENDS)
def table_store(request, spark, tmp_path):
    store = build_offline_store(offline_config(request.param, tmp_path / "offline"), spark)
    first = [(1, 1, 1.0), (2, 20, None), (None, 22, 2.5), (3, 30, 3.0)]  # days 1 and 2
    second = [(1, 50, 5.0), (2, 70, 7.0)]  # days 3 and 3: adds column w
    interval = Interval(start=DAY1, end=DAY1 + timedelta(days=2))
    store.write_window("view", _table_frame(spark, first), interval, ["event_date", "k"])
    later = Interval(start=DAY1 + timedelta(days=2), end=DAY1 + timedelta(days=4))
    store.write_window("view", _table_frame(spark, second, extra=True), later, ["event_date", "k"])
    return store


def _spark_rows(store, version, columns, first: date, last: date) -> list[tuple]:
    frame = store.read("view", version).where(f"event_date BETWEEN '{first}' AND '{last}'")
    return _sorted_rows(frame.select(*columns).toArrow())


def _sorted_rows(table: pa.Table) -> list[tuple]:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


@pytest.mark.spark
def test_read_arrow_and_count_rows_agree_with_spark_on_the_asked_days(table_store):
    wanted = ["v", "w", "k", "event_timestamp", "event_date", "not_a_column"]
    days = [date(2026, 1, d) for d in range(1, 5)]
    last_year = (date(2025, 1, 1), date(2025, 12, 31))
    for first, last in [(days[0], days[0]), (days[0], days[1]), (days[1], days[3]), last_year]:
        table = table_store.read_arrow("view", None, wanted, first, last)
        assert table.column_names == wanted[:-1]  # only the table's columns, in the asked order
        columns = table.column_names
        expected = _spark_rows(table_store, None, columns, first, last)
        assert _sorted_rows(table) == expected, (first, last)
        assert table_store.count_rows("view", None, first, last) == len(expected)
    assert table_store.count_rows("view", None, days[0], days[3]) == 6
    if table_store.kind == "delta":  # time travel: version 0 has no column w yet
        old = table_store.read_arrow("view", 0, wanted, days[0], days[3])
        assert old.column_names == ["v", "k", "event_timestamp", "event_date"]
        assert old.num_rows == table_store.count_rows("view", 0, days[0], days[3]) == 4
        with pytest.raises(RetrievalError, match="reading the offline table of 'view'"):
            table_store.read_arrow("view", 99, wanted, days[0], days[3])
    else:
        with pytest.raises(RetrievalError, match="keeps no versions"):
            table_store.read_arrow("view", 0, wanted, days[0], days[3])


@pytest.mark.spark
def test_an_empty_table_reads_no_rows_in_process(spark, tmp_path):
    for kind in BACKENDS:
        store = build_offline_store(offline_config(kind, tmp_path / kind), spark)
        store.write_window("empty", _table_frame(spark, []), Interval(start=DAY1, end=DAY1 + timedelta(days=1)),
                           ["event_date"])
        assert store.count_rows("empty", None, date(2026, 1, 1), date(2026, 1, 1)) == 0, kind
        table = store.read_arrow("empty", None, ["k", "v"], date(2026, 1, 1), date(2026, 1, 1))
        assert (table.num_rows, table.column_names) == (0, ["k", "v"]), kind


def test_delta_on_an_object_store_is_not_local():
    assert not DeltaStore(DeltaConfig(path="s3a://bucket/offline"), spark=None).local
    assert DeltaStore(DeltaConfig(path="file:///tmp/offline"), spark=None).local


# -- schema evolution, time travel, and the choice of engine ----------------------------------------


def _scores_view(user: Entity, source: str, with_bonus: bool) -> FeatureView:
    features = [Field(name="score", dtype="float64")]
    if with_bonus:
        features.append(Field(name="bonus", dtype="float32"))
    return FeatureView(
        entities=[user], source=FileSource(path=source, timestamp_field="event_timestamp"),
        ttl="1d", features=features,
    )


def _write_source(path, day: int, with_bonus: bool) -> None:
    rows = pd.DataFrame({
        "user_id": [1, 2],
        "event_timestamp": pd.to_datetime([f"2026-01-0{day}T01:00Z", f"2026-01-0{day}T02:00Z"]),
        "score": [day + 0.1, day + 0.2],
    })
    if with_bonus:
        rows["bonus"] = np.array([day + 0.5, np.nan], dtype="float32")
    path.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(path / f"day{day}.parquet", coerce_timestamps="us")


@pytest.fixture(params=BACKENDS)
def evolved_store(request, spark, tmp_path):
    """Day 1 materialized before the view gained ``bonus``, day 2 after (Delta: versions 0, 1)."""
    user, old_source, new_source = Entity(join_keys={"user_id": "int64"}), tmp_path / "v1", tmp_path / "v2"
    _write_source(old_source, 1, with_bonus=False)
    store = make_feature_store(
        tmp_path, {"user": user, "scores": _scores_view(user, str(old_source), False)}, request.param
    )
    store.materialize(DAY1, DAY1 + timedelta(days=1), sync_online=False)
    _write_source(new_source, 2, with_bonus=True)
    widened = {"user": user, "scores": _scores_view(user, str(new_source), True)}
    store.registry.write_version(store.config.project, compile_definitions(widened.items()))
    store.materialize(DAY1 + timedelta(days=1), DAY1 + timedelta(days=2), sync_online=False)
    return store


SCORE_ENTITIES = pd.DataFrame({
    "user_id": [1, 2, 1, 2, 3],
    "event_timestamp": pd.to_datetime(
        ["2026-01-01 12:00", "2026-01-02 12:00", "2026-01-02 01:00", "2026-01-01 01:59", "2026-01-02 12:00"]
    ),
})


@pytest.mark.spark
def test_a_feature_added_later_reads_null_for_older_rows_and_versions_time_travel(evolved_store):
    def both(entities=SCORE_ENTITIES, **options) -> pd.DataFrame:
        local, spark_made = (
            evolved_store.get_historical_features_pandas(
                entities, ["scores:score", "scores:bonus"], full_feature_names=False,
                engine=engine, **options,
            )
            for engine in ("local", "spark")
        )
        pd.testing.assert_frame_equal(local, spark_made)
        return local

    now = both()
    assert now["score"].tolist()[:3] == [1.1, 2.2, 2.1] and now["score"].isna().tolist()[3:] == [True, True]
    assert now["bonus"].tolist()[2] == np.float32(2.5)
    assert now["bonus"].isna().tolist() == [True, True, False, True, True]
    assert str(now["bonus"].dtype) == "float32"
    after_midnight = SCORE_ENTITIES.assign(event_timestamp=pd.Timestamp("2026-01-02 00:30"))
    assert both(after_midnight)["score"].fillna(0).tolist() == [1.1, 1.2, 1.1, 1.2, 0]  # day 1 rows
    check_empty_requests(evolved_store)
    assert both(SCORE_ENTITIES.assign(event_timestamp=pd.NaT))["score"].isna().all()
    if evolved_store.offline_store.kind == "delta":
        before = both(table_versions={"scores": 0})  # day 2 not written yet
        assert before["score"].fillna(0).tolist() == [1.1, 0, 1.1, 0, 0]
        assert before["bonus"].isna().all()


def check_empty_requests(store: FeatureStore) -> None:
    """No entity rows: an empty frame of the right columns and dtypes from both pandas engines
    (the caller's dtypes kept, object columns of an untyped frame too) and from the Spark path."""
    refs = ["scores:score", "scores:bonus"]
    typed = SCORE_ENTITIES.head(0).astype({"user_id": "int32"}).assign(label=pd.Series(dtype="category"))
    untyped = pd.DataFrame(columns=["event_timestamp", "user_id"])  # both columns object
    for given in (typed, untyped):
        for engine in ("local", "spark"):
            frame = store.get_historical_features_pandas(given, refs, engine=engine)
            assert list(frame.columns) == [*given.columns, "scores__score", "scores__bonus"] and frame.empty
            pd.testing.assert_frame_equal(frame[given.columns], given)
            assert [str(frame[c].dtype) for c in frame.columns[-2:]] == ["float64", "float32"], engine
        spark_frame = store.get_historical_features(given, refs)
        assert spark_frame.count() == 0 and spark_frame.columns == list(frame.columns)
        assert dict(spark_frame.dtypes)["event_timestamp"] == "timestamp"
        assert [t for _, t in spark_frame.dtypes[-2:]] == ["double", "float"]
    assert dict(store.get_historical_features(typed, refs).dtypes)["user_id"] == "int"


def _with_limit(store: FeatureStore, rows: int) -> FeatureStore:
    config = store.config.model_copy(update={"retrieval": RetrievalConfig(local_max_rows=rows)})
    return FeatureStore(store.repo_path, config=config)


@pytest.mark.spark
def test_auto_runs_in_process_up_to_the_row_limit_and_without_spark(evolved_store, spark):
    """The entity rows see days [2025-12-31, 2026-01-02]: all 4 table rows."""
    def engine_for(rows: int) -> str:
        store = _with_limit(evolved_store, rows)
        frame = store.get_historical_features_pandas(SCORE_ENTITIES, ["scores:score"])
        assert frame.attrs[ENGINE_ATTR] == store.training_engine(SCORE_ENTITIES, ["scores:score"])
        return frame.attrs[ENGINE_ATTR]

    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup()
    fresh = _with_limit(evolved_store, 4)
    assert fresh.get_historical_features_pandas(SCORE_ENTITIES, ["scores:score"]).attrs[ENGINE_ATTR] == "local"
    assert fresh._spark is None and tracker.getJobIdsForGroup() == jobs  # no session asked, no job run
    assert [engine_for(rows) for rows in (4, 3, 0)] == ["local", "spark", "spark"]
    one_day = SCORE_ENTITIES.assign(event_timestamp=pd.Timestamp("2026-01-03 12:00"))  # sees day 2 only
    assert _with_limit(evolved_store, 2).get_historical_features_pandas(
        one_day, ["scores:score"]
    ).attrs[ENGINE_ATTR] == "local"


@pytest.mark.spark
def test_requests_the_local_engine_cannot_answer_go_to_spark_or_are_refused(evolved_store, spark):
    store = evolved_store
    requested = resolve_features(store.registered(), ["scores:score"])
    manifest = store.training_manifest(["scores:score"])
    config = RetrievalConfig()

    def choice(entities, engine="auto", offline=None):
        return choose_engine(engine, entities, offline or store.offline_store, requested, manifest, config)

    assert choice(SCORE_ENTITIES).engine == "local"
    assert choice(SCORE_ENTITIES, "spark").engine == "spark"
    odd_labels = SCORE_ENTITIES.assign(at=SCORE_ENTITIES["event_timestamp"].astype(object), mixed=[1, "x", None, 2, 3])
    assert choice(odd_labels).engine == "local"  # never converted: only the join columns are
    assert choice(SCORE_ENTITIES.astype({"user_id": "category"})).engine == "local"
    as_text = SCORE_ENTITIES.astype({"event_timestamp": str})
    float_keys = SCORE_ENTITIES.astype({"user_id": "float64"})
    remote = DeltaStore(DeltaConfig(path="s3a://bucket/offline"), spark=None)
    for entities, offline, reason in [
        (spark.createDataFrame(SCORE_ENTITIES), None, "not a pandas DataFrame"),
        (as_text, None, "event_timestamp is not a pandas datetime64 column"),
        (float_keys, None, "entity column 'user_id' is double, but join key 'user_id' is int64"),
        (SCORE_ENTITIES, remote, "not on a local file system"),
    ]:
        auto = choice(entities, offline=offline)
        assert auto.engine == "spark" and reason in auto.reason
        with pytest.raises(RetrievalError, match="the local engine cannot answer this request: .*" + re.escape(reason)):
            choice(entities, "local", offline)
    with pytest.raises(RetrievalError, match="entity column 'user_id' is double"):
        store.get_historical_features_pandas(float_keys, ["scores:score"])  # auto: Spark says why


def test_retrieval_config_is_validated():
    config = RepoConfig.model_validate({"project": "p", "retrieval": {"local_max_rows": 5}})
    assert config.retrieval.local_max_rows == 5 and RepoConfig(project="p").retrieval.local_max_rows == 5_000_000
    for wrong in ({"local_max_rows": -1}, {"max_rows": 5}, {"local_threads": 0}):
        with pytest.raises(ValueError):
            RepoConfig.model_validate({"project": "p", "retrieval": wrong})


def test_aggregates_use_the_configured_threads_else_the_cores(monkeypatch):
    assert RetrievalConfig(local_threads=3).threads() == 3
    for cores, expected in ((1, 1), (2, 2), (64, 8), (None, 1)):
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        assert RetrievalConfig().threads() == expected
