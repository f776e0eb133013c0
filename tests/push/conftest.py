"""A repo to push into: a plain view (with a created timestamp and three dtypes) and an aggregate
view, a Parquet source of a few rows, a real redis-server (a fresh project per test, so keys
never collide) and the session's SparkSession for materialization."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from granero.feature_store import FeatureStore

T0 = datetime(2026, 1, 7, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
FILES = {
    "entities.py": '''
        from granero import Entity
        driver = Entity(join_keys={"driver_id": "int64"})
    ''',
    "views.py": '''
        from entities import driver
        from granero import Aggregation, FeatureView, Field, FileSource

        driver_stats = FeatureView(
            entities=[driver], ttl="3650d",
            source=FileSource(path="data/driver_stats", timestamp_field="event_timestamp",
                              created_timestamp_field="created"),
            features=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int32"),
                      Field(name="tier", dtype="string")])
        driver_trips = FeatureView(
            entities=[driver], hop="1m",
            source=FileSource(path="data/driver_trips", timestamp_field="event_timestamp"),
            features=[Field(name="fare", dtype="float64")],
            aggregations=[Aggregation(column="fare", function="sum", window="3650d", name="fares"),
                          Aggregation(column="fare", function="count", window="3650d", name="trips")])
    ''',
}
SOURCE_ROWS = {
    "driver_stats": {
        "driver_id": pa.array([1, 2], pa.int64()),
        "event_timestamp": pa.array([T0, T0], TS),
        "created": pa.array([T0, T0], TS),
        "conv_rate": pa.array([0.5, 0.25]), "trips": pa.array([3, 4], pa.int32()),
        "tier": pa.array(["gold", "silver"]),
    },
    "driver_trips": {
        "driver_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([T0], TS),
        "fare": pa.array([10.0]),
    },
}


def write_push_repo(root: Path, redis_url: str, *, offline: str = "parquet", extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: push_{uuid.uuid4().hex[:12]}\n"
        f"online_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n"
        f"offline_store: {{type: {offline}, path: data/offline}}\n")
    for name, source in FILES.items():
        (root / name).write_text(textwrap.dedent(source) + textwrap.dedent(extra if name == "views.py" else ""))
    for view, columns in SOURCE_ROWS.items():
        (root / "data" / view).mkdir(parents=True)
        pq.write_table(pa.table(columns), root / "data" / view / "part-0.parquet")
    return root


@pytest.fixture(scope="session")
def push_url(redis_url: str) -> str:
    """The session's redis-server, on a database of its own."""
    return redis_url.rsplit("/", 1)[0] + "/5"


@pytest.fixture
def store(tmp_path: Path, push_url: str) -> Iterator[FeatureStore]:
    with FeatureStore(write_push_repo(tmp_path / "repo", push_url)) as store:
        store.apply()
        yield store


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)
