"""Training retrieval end to end: random sources → materialize → get_historical_features == oracle.

The sources carry what materialization must undo: renamed columns (field_mapping), a feature
computed by a transformation, rows removed by a filter, full ties and late rows. The oracle and
facade tests also run through ``get_historical_features_pandas`` with each engine.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from granero.definitions import Entity, FeatureService, FeatureView, Field, FileSource
from granero.errors import InvalidRequest, RetrievalError
from granero.offline import retrieval
from granero.offline.retrieval import TrainingManifest
from tests.offline.conftest import BACKENDS, make_feature_store
from tests.offline.oracle import OracleView, expected_values, latest_per_key
from tests.offline.random_data import BASE, FEATURE_DTYPES, KEY_DTYPES, VIEWS, as_time, generate

pytestmark = pytest.mark.spark

SEED = 7
WINDOW = (BASE - timedelta(days=1), BASE + timedelta(days=1))
REFS = ["pair:f_double", "pair:f_list", "pair:f_int", "text:*", "single:f_int"]


def kept(row: dict) -> bool:
    """The views' filter, applied by the oracle by hand."""
    return row.get("f_int") != 3


def _source_frame(spark, view: OracleView, rows: list[dict]):
    """Raw source rows: keys renamed (K_<key>), event/created as `at`/`written`, f_double halved."""
    ddl = [f"K_{k} {_ddl(KEY_DTYPES[k])}" for k in view.keys] + [
        "at timestamp",
        "written timestamp",
    ]
    ddl += [f"{'half' if f == 'f_double' else f} {_ddl(FEATURE_DTYPES[f])}" for f in view.features]
    data = [
        (
            *[r[k] for k in view.keys],
            as_time(r["event"]),
            as_time(r["created"]),
            *[(r[f] / 2 if f == "f_double" and r[f] is not None else r[f]) for f in view.features],
        )
        for r in rows
    ]
    return spark.createDataFrame(data, ", ".join(ddl))


def _ddl(dtype: str) -> str:
    from granero.types import spark_ddl

    return spark_ddl(dtype)


def definitions(tmp_path, spark, tables: dict[str, list[dict]]) -> dict:
    entities = {
        name: Entity(join_keys={k: KEY_DTYPES[k] for k in view.keys})
        for name, view in VIEWS.items()
    }
    found: dict = {f"{name}_entity": entity for name, entity in entities.items()}
    for name, view in VIEWS.items():
        path = str(tmp_path / "sources" / name)
        _source_frame(spark, view, tables[name]).write.parquet(path)
        found[name] = FeatureView(
            entities=[entities[name]],
            source=FileSource(
                path=path,
                timestamp_field="at",
                created_timestamp_field=None if name == "single" else "written",
                field_mapping={f"K_{k}": k for k in view.keys},
            ),
            ttl=timedelta(microseconds=view.ttl),
            features=[Field(name=f, dtype=FEATURE_DTYPES[f]) for f in view.features],
            transformations={"f_double": "half * 2"} if "f_double" in view.features else {},
            filter="f_int IS NULL OR f_int <> 3" if "f_int" in view.features else None,
        )
    found["model"] = FeatureService(features=[found["pair"], found["text"][["f_str"]]])
    return found


def entity_frame(spark, entities: list[dict]):
    data = [
        (r["row"], r["a"], r["b"], r["s"], r["t"], as_time(r["ts"]), r["label"]) for r in entities
    ]
    return spark.createDataFrame(
        data, "row int, a bigint, b int, s string, t string, event_timestamp timestamp, label int"
    )


def pandas_entities(entities: list[dict]) -> pd.DataFrame:
    """The entity rows of ``entity_frame`` as pandas: nullable ints, UTC datetimes."""

    def column(name: str, dtype: str):
        return pd.array([r[name] for r in entities], dtype=dtype)

    return pd.DataFrame({
        "row": column("row", "Int32"),
        "a": column("a", "Int64"),
        "b": column("b", "Int32"),
        "s": [r["s"] for r in entities],
        "t": [r["t"] for r in entities],
        "event_timestamp": pd.to_datetime([as_time(r["ts"]) for r in entities], utc=True),
        "label": column("label", "Int32"),
    })


def plain_rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """A pandas training set's rows as Python values: NA/NaN/NaT -> None, arrays -> tuples."""
    return list(zip(*[[_plain(v) for v in frame[c].tolist()] for c in columns], strict=True))


def _plain(value):
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    return None if value is None or value is pd.NA or value is pd.NaT or value != value else value


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def oracle(entities: list[dict], tables: dict[str, list[dict]]) -> Counter:
    requested: dict[str, list[str]] = {}
    for ref in REFS:
        view, feature = ref.split(":")
        requested.setdefault(view, []).extend(VIEWS[view].features if feature == "*" else [feature])
    expected = Counter()
    for entity in entities:
        values = []
        for name, features in requested.items():
            values += expected_values(
                entity, [r for r in tables[name] if kept(r)], VIEWS[name], features
            )
        expected[(entity["row"], entity["label"], *map(_hashable, values))] += 1
    return expected


@pytest.fixture(scope="module", params=BACKENDS)
def random_store(request, spark, tmp_path_factory):
    """One materialized random repo per backend, shared by the read-only tests below."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    entities, tables = generate(SEED, n_rows=80, n_entities=60)
    store = make_feature_store(tmp_path, definitions(tmp_path, spark, tables), request.param)
    store.materialize(*WINDOW, sync_online=False)
    return store, entities, tables


OUTPUTS = [
    "pair__f_double",
    "pair__f_list",
    "pair__f_int",
    "text__f_str",
    "text__f_bool",
    "single__f_int",
]


@pytest.mark.parametrize("few_entities", [True, False], ids=["visible_rows", "whole_tables"])
def test_training_set_matches_the_oracle(spark, random_store, tmp_path, monkeypatch, few_entities):
    """Both plans: entity rows taken as few (tables cut by visible_rows first), and as many."""
    monkeypatch.setattr(retrieval, "BROADCAST_BYTES", math.inf if few_entities else -1)
    store, entities, tables = random_store
    assert retrieval.is_small(entity_frame(spark, entities)) is few_entities
    frame = store.get_historical_features(
        entity_frame(spark, entities), REFS, manifest_path=tmp_path / "m.json"
    )
    assert frame.columns == ["row", "a", "b", "s", "t", "event_timestamp", "label", *OUTPUTS]
    actual = Counter(
        (r["row"], r["label"], *[_hashable(r[c]) for c in OUTPUTS]) for r in frame.collect()
    )
    assert actual == oracle(entities, tables)
    _check_manifest(tmp_path / "m.json")


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_pandas_training_set_matches_the_oracle_in_input_order(random_store, tmp_path, engine):
    store, entities, tables = random_store
    given = pandas_entities(entities)
    frame = store.get_historical_features_pandas(
        given, REFS, manifest_path=tmp_path / "m.json", engine=engine
    )
    assert frame.attrs[retrieval.ENGINE_ATTR] == engine
    assert list(frame.columns) == [*given.columns, *OUTPUTS]
    assert frame["row"].tolist() == given["row"].tolist()  # input order, duplicates kept
    pd.testing.assert_frame_equal(frame[given.columns], given)  # the caller's columns, as given
    assert Counter(plain_rows(frame, ["row", "label", *OUTPUTS])) == oracle(entities, tables)
    _check_manifest(tmp_path / "m.json")


def _check_manifest(path) -> None:
    manifest = json.loads(path.read_text())
    assert manifest["features"] == [f"pair:{f}" for f in ("f_double", "f_list", "f_int")] + [
        "text:f_str",
        "text:f_bool",
        "single:f_int",
    ]
    assert manifest["registry_version"] == 1 and len(manifest["registry_hash"]) == 64
    assert set(manifest["table_versions"]) == {"pair", "text", "single"}


def test_latest_rows_follow_the_online_rule(spark, random_store):
    store, _, tables = random_store
    view = VIEWS["pair"]
    expected = latest_per_key([r for r in tables["pair"] if kept(r)], view)
    rows = store.latest_rows("pair").collect()
    assert store.latest_rows("pair").columns == store.offline_store.read("pair").columns
    assert {
        (r["a"], r["b"]): (r["f_double"], r["f_int"], _hashable(r["f_list"])) for r in rows
    } == {
        key: (row["f_double"], row["f_int"], _hashable(row["f_list"]))
        for key, row in expected.items()
    }


def score_store(tmp_path, scores: list[float]):
    """One view, `scores`, of user 1 at 00:00 and 06:00 and user 2 at 03:00 (ttl 1 day)."""
    user = Entity(join_keys={"user_id": "int64"})
    view = FeatureView(
        entities=[user],
        source=FileSource(path=str(tmp_path / "src"), timestamp_field="event_timestamp"),
        ttl="1d",
        features=[Field(name="score", dtype="float64")],
    )
    write_scores(tmp_path, scores)
    store = make_feature_store(tmp_path, {"user": user, "scores": view})
    store.materialize(*WINDOW, sync_online=False)
    return store


def write_scores(tmp_path, scores: list[float]) -> None:
    source = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "event_timestamp": pd.to_datetime(
                ["2026-01-01T00:00Z", "2026-01-01T06:00Z", "2026-01-01T03:00Z"]
            ),
            "score": scores,
        }
    )
    (tmp_path / "src").mkdir(exist_ok=True)
    source.to_parquet(tmp_path / "src" / "part.parquet", coerce_timestamps="us")


def test_entity_rows_from_pandas_csv_and_parquet_agree_and_time_travel(spark, tmp_path):
    store = score_store(tmp_path, [0.1, 0.6, 0.3])
    entities = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 1],
            "label": [1, 0, 1, 0, 1],
            "event_timestamp": pd.to_datetime(
                [
                    "2026-01-01 05:59:59",
                    "2026-01-01 06:00:00",
                    "2026-01-02 03:00:00",
                    "2026-01-01 12:00:00",
                    "2026-01-01 06:00:00",
                ]
            ),
        }
    )
    entities.to_csv(tmp_path / "entities.csv", index=False)
    entities.to_parquet(tmp_path / "entities.parquet", coerce_timestamps="us")
    manifest = store.training_manifest(["scores:score"])

    def training_set(given, engine=None, **options) -> list[tuple]:
        if engine is not None:  # pandas out, in input order
            frame = store.get_historical_features_pandas(
                given, ["scores:score"], full_feature_names=False, engine=engine, **options
            )
            assert frame.attrs[retrieval.ENGINE_ATTR] == engine
            assert frame["label"].tolist() == given["label"].tolist()
            return sorted(plain_rows(frame, ["user_id", "label", "score"]))
        frame = store.get_historical_features(
            given, ["scores:score"], full_feature_names=False, **options
        )
        return sorted((r["user_id"], r["label"], r["score"]) for r in frame.collect())

    expected = [(1, 0, 0.6), (1, 1, 0.1), (1, 1, 0.6), (2, 1, 0.3), (3, 0, None)]
    for given in (entities, str(tmp_path / "entities.csv"), tmp_path / "entities.parquet"):
        assert training_set(given) == expected, given
    for engine in ("local", "spark"):
        assert training_set(entities, engine) == expected, engine

    write_scores(tmp_path, [0.2, 0.7, 0.4])  # corrected upstream data, re-materialized
    store.materialize(*WINDOW, sync_online=False)
    assert training_set(entities) == [
        (1, 0, 0.7),
        (1, 1, 0.2),
        (1, 1, 0.7),
        (2, 1, 0.4),
        (3, 0, None),
    ]
    assert training_set(entities, table_versions=manifest.table_versions) == expected
    for engine in ("local", "spark"):
        assert training_set(entities, engine, table_versions=manifest.table_versions) == expected


def test_requests_that_cannot_be_answered_fail_precisely(spark, random_store):
    store, entities, _ = random_store
    frame = entity_frame(spark, entities)
    assert store.training_manifest(feature_service="model").features == [
        "pair:f_double",
        "pair:f_int",
        "pair:f_list",
        "text:f_str",
    ]
    with pytest.raises(RetrievalError, match=r"lack column\(s\) \['s'\]"):
        store.get_historical_features(frame.drop("s"), ["text:f_str"])
    with pytest.raises(RetrievalError, match=r"lack column\(s\) \['a', 's'\] \(needed: 'a' by \['pair', 'single'\]; "
                       r"'s' by \['text'\]\)"):
        store.get_historical_features(frame.drop("s", "a"), REFS)
    with pytest.raises(RetrievalError, match="f_double.*full feature names"):
        store.get_historical_features(
            frame, ["pair:f_double", "single:f_double"], full_feature_names=False
        )
    with pytest.raises(RetrievalError, match=r"already have column\(s\) \['f_str'\]"):
        store.get_historical_features(
            frame.withColumnRenamed("label", "f_str"), ["text:f_str"], full_feature_names=False
        )
    with pytest.raises(InvalidRequest, match="no feature 'nope'"):
        store.get_historical_features(frame, ["pair:nope"])
    with pytest.raises(RetrievalError, match="entity column 'a' is string, but join key 'a' is int64"):
        store.get_historical_features(frame.withColumn("a", frame["a"].cast("string")), ["pair:f_int"])
    if store.offline_store.kind == "parquet":
        with pytest.raises(RetrievalError, match="keeps no versions"):
            store.get_historical_features(frame, ["pair:f_int"], table_versions={"pair": 0})


@pytest.mark.parametrize("engine", ["auto", "local", "spark"])
def test_pandas_requests_that_cannot_be_answered_fail_with_the_same_messages(random_store, engine):
    store, entities, _ = random_store
    given = pandas_entities(entities)

    def ask(frame, refs, **options):
        return store.get_historical_features_pandas(frame, refs, engine=engine, **options)

    with pytest.raises(RetrievalError, match=r"lack column\(s\) \['s'\]"):
        ask(given.drop(columns="s"), ["text:f_str"])
    with pytest.raises(RetrievalError, match=r"duplicate columns \['label'\]"):
        ask(pd.concat([given, given[["label"]]], axis=1), ["text:f_str"])
    with pytest.raises(RetrievalError, match="f_double.*full feature names"):
        ask(given, ["pair:f_double", "single:f_double"], full_feature_names=False)
    with pytest.raises(RetrievalError, match=r"already have column\(s\) \['f_str'\]"):
        ask(given.rename(columns={"label": "f_str"}), ["text:f_str"], full_feature_names=False)
    with pytest.raises(RetrievalError, match="entity column 'a' is string, but join key 'a' is int64"):
        ask(given.astype({"a": "string"}), ["pair:f_int"])
    with pytest.raises(RetrievalError, match="engine must be"):
        store.get_historical_features_pandas(given, ["pair:f_int"], engine="duckdb")


def test_manifest_round_trips(tmp_path):
    manifest = TrainingManifest(
        features=["v:f"],
        columns=["v__f"],
        feature_service=None,
        registry_version=3,
        registry_hash="ab",
        offline_store="delta",
        table_versions={"v": 4},
        full_feature_names=True,
    )
    manifest.write(tmp_path / "m.json")
    assert TrainingManifest.read(tmp_path / "m.json") == manifest
