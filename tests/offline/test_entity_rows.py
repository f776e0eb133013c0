"""Entity rows in: what a training request reads from the caller, and what it says when it cannot.

A missing column is reported with the views that need it, and only those (a property over random
requests, no Spark). A CSV entity file carries no types: its join columns are parsed, and a value
that does not parse is named with its file and column, through the library and through
``granero historical``, which also turns an empty entity file into an empty training set.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
import typer
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from granero.cli import offline_cmds
from granero.definitions import Entity, FeatureView, Field, FileSource
from granero.definitions.refs import ViewFeatures
from granero.errors import RetrievalError
from granero.feature_store import FeatureStore
from granero.offline.entity_rows import check_entity_columns, typed_csv
from tests.offline.conftest import make_feature_store

KEYS = ["k1", "k2", "k3", "k4"]


def _requested(views: list[list[str]]) -> list[ViewFeatures]:
    requested = []
    for number, keys in enumerate(views):
        entity = Entity(name=f"e{number}", join_keys=dict.fromkeys(keys, "int64"))
        view = FeatureView(
            name=f"v{number}", entities=[entity], source=FileSource(path="unused", timestamp_field="ts"),
            ttl="1d", features=[Field(name="f", dtype="int64")],
        )
        requested.append(ViewFeatures(view=view, features=("f",), join_keys=dict.fromkeys(keys, "int64")))
    return requested


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    views=st.lists(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True), min_size=1, max_size=4),
    present=st.lists(st.sampled_from([*KEYS, "event_timestamp", "label"]), unique=True),
)
def test_a_missing_column_names_only_the_views_that_need_it(views, present):
    requested = _requested(views)
    needed_by = {"event_timestamp": [vf.view.name for vf in requested]}
    for vf in requested:
        for key in vf.join_keys:
            needed_by.setdefault(key, []).append(vf.view.name)
    missing = [c for c in needed_by if c not in present]
    if not missing:
        check_entity_columns(present, requested, ["v0__f"])
        return
    with pytest.raises(RetrievalError) as raised:
        check_entity_columns(present, requested, ["v0__f"])
    message = str(raised.value)
    needs = "; ".join(f"{c!r} by {needed_by[c]}" for c in missing)
    assert f"lack column(s) {missing} (needed: {needs}); they have {present}" in message


# -- CSV entity files --------------------------------------------------------------------------

JOIN = {"event_timestamp": "timestamp", "user_id": "int64"}


def _csv(tmp_path, text: str) -> str:
    path = tmp_path / "entities.csv"
    path.write_text(text)
    return str(path)


def _read_csv(spark, path: str):
    return spark.read.option("header", "true").option("inferSchema", "true").csv(path)


@pytest.mark.spark
def test_csv_join_columns_are_parsed_and_a_bad_value_is_named(spark, tmp_path):
    good = _csv(tmp_path, "user_id,event_timestamp,note\n1,2026-01-01 00:00:00,a\n2,2026-01-02T03:04:05Z,b\n")
    assert dict(typed_csv(_read_csv(spark, good), good, JOIN).dtypes) == {
        "user_id": "int", "event_timestamp": "timestamp", "note": "string",  # Spark typed them itself
    }
    for text, column, value in [
        ("user_id,event_timestamp\n1,2026-01-01 00:00:00\n2,2026-13-45 00:00\n", "event_timestamp", "2026-13-45 00:00"),
        ("user_id,event_timestamp\n1,2026-01-01\nabc,2026-01-02\n", "user_id", "abc"),
    ]:
        bad = _csv(tmp_path, text)
        with pytest.raises(RetrievalError, match=f"entity file {bad}: column '{column}' holds '{value}'"):
            typed_csv(_read_csv(spark, bad), bad, JOIN)
    empty = _csv(tmp_path, "user_id,event_timestamp,label\n")
    typed = typed_csv(_read_csv(spark, empty), empty, JOIN)
    assert dict(typed.dtypes) == {"user_id": "bigint", "event_timestamp": "timestamp", "label": "string"}


app = typer.Typer()


@app.callback()
def _granero() -> None:
    """Stands in for the granero command."""


offline_cmds.register(app)


@pytest.fixture(scope="module")
def score_repo(spark, tmp_path_factory):
    """A repo folder (feature_store.yaml on disk) with one materialized view, `scores`."""
    tmp_path = tmp_path_factory.mktemp("score_repo")
    user = Entity(join_keys={"user_id": "int64"})
    source = tmp_path / "source"
    source.mkdir()
    pd.DataFrame({
        "user_id": [1, 2],
        "event_timestamp": pd.to_datetime(["2026-01-01T01:00Z", "2026-01-01T02:00Z"]),
        "score": [0.5, 0.25],
    }).to_parquet(source / "part.parquet", coerce_timestamps="us")
    view = FeatureView(
        entities=[user], source=FileSource(path=str(source), timestamp_field="event_timestamp"),
        ttl="1d", features=[Field(name="score", dtype="float64")],
    )
    store = make_feature_store(tmp_path, {"user": user, "scores": view})
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    store.materialize(start, start + timedelta(days=1), sync_online=False)
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump(store.config.model_dump(mode="json")))
    return tmp_path


def _historical(repo, entities: str, out) -> object:
    args = ["historical", "--entities", entities, "-f", "scores:score", "--out", str(out), "--repo", str(repo)]
    return CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)


@pytest.mark.spark
def test_historical_names_a_bad_timestamp_and_builds_an_empty_set_from_an_empty_file(spark, score_repo, tmp_path):
    bad = _csv(tmp_path, "user_id,event_timestamp,label\n1,2026-01-01 05:00:00,1\n2,yesterday,0\n")
    refused = _historical(score_repo, bad, tmp_path / "bad_out")
    assert refused.exit_code == 6, refused.output
    assert f"entity file {bad}: column 'event_timestamp' holds 'yesterday'" in refused.stderr
    assert "Multiple failures" not in refused.stderr and not (tmp_path / "bad_out").exists()

    empty = _csv(tmp_path, "user_id,event_timestamp,label\n")
    built = _historical(score_repo, empty, tmp_path / "out")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["columns"] == ["user_id", "event_timestamp", "label", "scores__score"]
    training = spark.read.parquet(str(tmp_path / "out"))
    assert training.count() == 0
    assert training.dtypes == [
        ("user_id", "bigint"), ("event_timestamp", "timestamp"), ("label", "string"), ("scores__score", "double"),
    ]


@pytest.mark.spark
def test_the_spark_path_gives_timestamp_instants_in_utc_and_keeps_spark_types(spark, score_repo):
    """Pandas in: TimestampType instants (any unit or zone, naive = UTC), shown in UTC by
    ``toPandas()``; Spark in: the caller's own types, a timestamp_ntz column included."""
    from pyspark.sql import functions as F

    store = FeatureStore(score_repo)
    paris = pd.Series(pd.to_datetime(["2026-01-01 03:30", "2026-01-01 02:59"])).dt.tz_localize("Europe/Paris")
    given_rows = pd.DataFrame({"user_id": [1, 2], "event_timestamp": paris.astype("datetime64[ms, Europe/Paris]")})
    training = store.get_historical_features(given_rows, ["scores:score"])
    assert dict(training.dtypes) == {"user_id": "bigint", "event_timestamp": "timestamp", "scores__score": "double"}
    back = training.toPandas().sort_values("user_id")
    assert back["event_timestamp"].tolist() == [pd.Timestamp("2026-01-01 02:30"), pd.Timestamp("2026-01-01 01:59")]
    assert back["scores__score"].tolist()[0] == 0.5 and pd.isna(back["scores__score"].tolist()[1])  # 01:59 < 02:00
    ntz = spark.createDataFrame(given_rows).select(
        F.col("user_id").cast("int"), F.col("event_timestamp").cast("timestamp_ntz")
    )
    kept = store.get_historical_features(ntz, ["scores:score"])
    assert kept.dtypes[:2] == [("user_id", "int"), ("event_timestamp", "timestamp_ntz")]
    assert sorted(r["scores__score"] or 0 for r in kept.collect()) == [0, 0.5]
    store.close()
