"""Write-time transforms: computed at materialization by mapInArrow, stored like any feature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from granero.errors import DefinitionError, TransformCodeChanged, TransformError
from granero.feature_store import FeatureStore
from granero.repo.loader import load_repo
from tests.repo_builder import write_repo

BASE = datetime(2026, 1, 5, tzinfo=UTC)
CONFIG = """
project: wt
registry: {path: data/registry}
offline_store: {type: parquet, path: data/offline}
online_store: {type: embedded, data_dir: data/online}
"""

VIEWS = '''
import pyarrow.compute as pc
from granero import Entity, FeatureView, Field, FileSource
from granero.definitions.write_transform import WriteTransform

trip = Entity(join_keys={"trip_id": "int64"})


def span(c):
    if 999.0 in c["lat_a"].to_pylist():
        raise ValueError("lat 999 is off the map")
    lat = pc.abs(pc.subtract(c["lat_a"], c["lat_b"]))
    span = pc.add(lat, pc.abs(pc.subtract(c["lon_a"], c["lon_b"])))
    return {"span": span, "north": pc.greater(c["lat_b"], c["lat_a"])}


trips = FeatureView(
    entities=[trip],
    source=FileSource(path="data/trips", timestamp_field="event_timestamp"),
    ttl="1d",
    features=[Field(name="lat_a", dtype="float64"), Field(name="span", dtype="float64"),
              Field(name="north", dtype="bool")],
    write_transform=WriteTransform(
        function=span, inputs=["lat_a", "lat_b", "lon_a", "lon_b"], outputs=["span", "north"]
    ),
)
'''


def trips_repo(root, lat_a: list[float | None]):
    repo = write_repo(root, feature_store_yaml=CONFIG, views=VIEWS)
    n = len(lat_a)
    table = pa.table({
        "trip_id": pa.array(range(n), pa.int64()),
        "event_timestamp": pa.array([BASE + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "lat_a": pa.array(lat_a, pa.float64()),
        "lat_b": pa.array([0.25 * i for i in range(n)], pa.float64()),
        "lon_a": pa.array([1.5] * n, pa.float64()),
        "lon_b": pa.array([None if i % 5 == 0 else -0.5 * i for i in range(n)], pa.float64()),
    })
    (repo / "data" / "trips").mkdir(parents=True)
    pq.write_table(table, repo / "data" / "trips" / "part-0.parquet")
    return repo, table.to_pylist()


def test_outputs_must_be_declared_features(tmp_path):
    views = VIEWS.replace('outputs=["span", "north"]', 'outputs=["span", "nope"]')
    assert views != VIEWS
    with pytest.raises(DefinitionError, match=r"write_transform.outputs.*\['nope'\] are not declared"):
        load_repo(write_repo(tmp_path, feature_store_yaml=CONFIG, views=views))


@pytest.mark.spark
def test_materialized_outputs_are_stored_like_features_and_match_the_oracle(spark, tmp_path):
    repo, rows = trips_repo(tmp_path / "repo", [10.0 - i for i in range(40)])
    with FeatureStore(repo) as store:
        store.apply()
        assert store.registered().feature_views["trips"].write_transform.code.ref == "views:span"
        store.materialize(BASE, BASE + timedelta(days=1), sync_online=False)
        entities = pd.DataFrame({"trip_id": range(40), "event_timestamp": [BASE + timedelta(hours=2)] * 40})
        got = store.get_historical_features_pandas(entities, ["trips:span", "trips:north"], engine="local")
    for row, span, north in zip(rows, got["trips__span"], got["trips__north"], strict=True):
        if row["lon_b"] is None:
            assert pd.isna(span)
        else:
            assert span == abs(row["lat_a"] - row["lat_b"]) + abs(row["lon_a"] - row["lon_b"])
        assert north == (row["lat_b"] > row["lat_a"])


@pytest.mark.spark
def test_a_failing_or_changed_write_transform_fails_materialization_clearly(spark, tmp_path):
    repo, _ = trips_repo(tmp_path / "repo", [1.0, 999.0, 2.0])
    with FeatureStore(repo) as store:
        store.apply()
        with pytest.raises(TransformError, match="feature view 'trips' write_transform: transform views:span "
                                                 "raised ValueError: lat 999 is off the map"):
            store.materialize(BASE, BASE + timedelta(days=1), sync_online=False)
        assert store.registry.materialized() == {}  # nothing recorded: the next run repairs it
        (repo / "views.py").write_text(VIEWS.replace("lat 999 is off the map", "off the map"))
        with pytest.raises(TransformCodeChanged, match="'trips': the write transform loaded .* not the code applied"):
            store.materialize(BASE, BASE + timedelta(days=1), sync_online=False)
