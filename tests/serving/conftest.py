"""A small applied repo with every dtype, a composite key and a feature service, served by a real
gRPC server on 127.0.0.1 from a real redis-server, with rows written through the online store.

Event times are relative to the wall clock, since the server judges ttl at ``now``: fresh rows
are a minute old, the stale one two hours old against a 1-hour ttl. Rows are kept by Redis past
their ttl (``expire_keys: false``) so that the read-time check is what withholds them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from granero.feature_store import FeatureStore
from granero.serving.client import Client
from granero.serving.config import ServingConfig
from granero.serving.server import ServerHandle, build_server
from granero.types import SCALARS, arrow_type

DTYPES = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
NOW = datetime.now(UTC)
FRESH = NOW - timedelta(minutes=1)
STALE = NOW - timedelta(hours=2)
MOMENT = datetime(2026, 1, 7, 12, 30, 15, 123456, tzinfo=UTC)
SAMPLES = {
    "int32": -(2**31), "int64": 2**62, "float32": 0.5, "float64": 1 / 3, "bool": True,
    "string": "héllo", "bytes": b"\x00\xff", "timestamp": MOMENT,
    "list<int32>": [1, -2], "list<int64>": [2**40], "list<float32>": [0.25, 1.5],
    "list<float64>": [0.1, 0.2], "list<bool>": [True, False], "list<string>": ["a", ""],
    "list<bytes>": [b"x"], "list<timestamp>": [MOMENT, MOMENT + timedelta(days=1)],
}
"""One value per dtype, exactly representable in its wire type."""
MAX_BATCH = 50


def feature_name(dtype: str) -> str:
    """``list<int32>`` -> ``list_int32_v``."""
    return dtype.replace("<", "_").replace(">", "") + "_v"


DEFINITIONS = {
    "entities.py": '''
        from granero import Entity
        driver = Entity(join_keys={"driver_id": "int64"}, owner="supply")
        route = Entity(join_keys={"zone": "int32", "vehicle": "string"})
    ''',
    "views.py": f'''
        from entities import driver, route
        from granero import FeatureView, Field, FileSource

        def source(name):
            return FileSource(path=f"data/{{name}}", timestamp_field="event_timestamp",
                              created_timestamp_field="created")

        all_types = FeatureView(
            entities=[driver], source=source("all_types"), ttl="1d",
            features=[Field(name=n, dtype=d)
                      for n, d in {[(feature_name(d), d) for d in DTYPES]!r}],
        )
        driver_stats = FeatureView(
            entities=[driver], source=source("driver_stats"), ttl="1h",
            features=[Field(name="conv_rate", dtype="float64", description="accepted share"),
                      Field(name="trips", dtype="int64")],
            owner="supply", tags={{"tier": "gold"}},
        )
        route_stats = FeatureView(
            entities=[route], source=source("route_stats"), ttl="1d",
            features=[Field(name="conv_rate", dtype="float64"), Field(name="eta", dtype="float32")],
        )
        from granero.definitions.aggregation import Aggregation
        driver_trips = FeatureView(  # an aggregate view: what is served is its aggregations
            entities=[driver], source=source("driver_trips"), hop="1m",
            features=[Field(name="fare", dtype="float64"), Field(name="tier", dtype="string")],
            aggregations=[Aggregation(column="driver_id", function="count", window="1h", name="trips_1h"),
                          Aggregation(column="fare", function="mean", window="1h"),
                          Aggregation(column="fare", function="max", window="1d"),
                          Aggregation(column="tier", function="last", window="1d")],
        )
    ''',
    "services.py": '''
        from views import driver_stats, route_stats
        from granero import FeatureService
        ranker = FeatureService(features=[driver_stats[["conv_rate"]], route_stats],
                                description="ranking model", owner="ml")
    ''',
}

ROWS = {
    "all_types": [
        {"driver_id": 1, "event_timestamp": FRESH,
         **{feature_name(d): v for d, v in SAMPLES.items()}},
        {"driver_id": 2, "event_timestamp": FRESH},
        {"driver_id": 3, "event_timestamp": FRESH,
         **{feature_name(f"list<{s}>"): [None, *SAMPLES[f"list<{s}>"], None] for s in SCALARS}},
    ],
    "driver_stats": [
        {"driver_id": 1, "event_timestamp": FRESH, "conv_rate": 0.9, "trips": 12},
        {"driver_id": 2, "event_timestamp": FRESH, "conv_rate": None, "trips": 3},
        {"driver_id": 3, "event_timestamp": STALE, "conv_rate": 0.1, "trips": 1},
    ],
    "route_stats": [
        {"zone": 1, "vehicle": "car", "event_timestamp": FRESH, "conv_rate": 0.5, "eta": 7.5},
    ],
}
"""Driver 1 has everything, 2 has nulls, 3 is stale (and null list elements), 4 has nothing."""


def write_repo(root: Path, redis_url: str, project: str = "serving_test") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: {project}\n"
        f"online_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n")
    for name, source in DEFINITIONS.items():
        (root / name).write_text(textwrap.dedent(source))
    return root


def write_rows(store: FeatureStore, view_name: str, rows: list[dict[str, Any]]) -> int:
    """Write feature rows through the online store's write path (as a sync task does)."""
    import pyarrow as pa

    from granero.online.sync import PartitionWriter

    defs = store.registered()
    view = defs.feature_views[view_name]
    keys = defs.join_keys(view)
    stamp = pa.timestamp("us", tz="UTC")
    columns = {k: pa.array([r[k] for r in rows], arrow_type(d)) for k, d in keys.items()}
    columns["event_timestamp"] = pa.array([r["event_timestamp"] for r in rows], stamp)
    columns["created_timestamp"] = pa.array([r.get("created_timestamp") for r in rows], stamp)
    for f in view.features:
        columns[f.name] = pa.array([r.get(f.name) for r in rows], arrow_type(f.dtype))
    online = store.online_store
    writer = PartitionWriter(online.settings, store.config.project, view_name, tuple(keys.values()),
                             tuple((f.name, f.dtype) for f in view.features), view.ttl)
    return writer.write(online, pa.RecordBatch.from_pydict(columns))


TRIP_EVENTS = [
    {"driver_id": 1, "event_timestamp": FRESH, "fare": 7.5, "tier": "gold"},
    {"driver_id": 1, "event_timestamp": FRESH - timedelta(minutes=90), "fare": 2.5, "tier": None},
    {"driver_id": 2, "event_timestamp": STALE, "fare": None, "tier": "silver"},
]
"""driver_trips: driver 1 has a trip in the hour and one before, 2 one 2 hours ago, 3 none."""


def write_trip_events(store: FeatureStore, events: list[dict[str, Any]]) -> int:
    """driver_trips' members of ``events`` (every entity's rewritten whole)."""
    import pyarrow as pa

    from tests.online.aggregate_members import write_events

    defs = store.registered()
    stamp = pa.timestamp("us", tz="UTC")
    table = pa.table({"driver_id": pa.array([e["driver_id"] for e in events], pa.int64()),
                      "event_timestamp": pa.array([e["event_timestamp"] for e in events], stamp),
                      "fare": pa.array([e["fare"] for e in events], pa.float64()),
                      "tier": pa.array([e["tier"] for e in events], pa.string())})
    return write_events(store.online_store, defs, defs.feature_views["driver_trips"], table)


def write_all_rows(store: FeatureStore) -> None:
    for view_name, rows in ROWS.items():
        assert write_rows(store, view_name, rows) == len(rows)
    assert write_trip_events(store, TRIP_EVENTS) > 0


@pytest.fixture(scope="session")
def serving_url(redis_url: str) -> str:
    """The session's redis-server, on a database of its own."""
    return redis_url.rsplit("/", 1)[0] + "/7"


@pytest.fixture(scope="session")
def serving_repo(tmp_path_factory: pytest.TempPathFactory, serving_url: str) -> Path:
    repo = write_repo(tmp_path_factory.mktemp("serving") / "repo", serving_url)
    FeatureStore(repo).apply()
    return repo


@pytest.fixture(scope="session")
def store(serving_repo: Path) -> Iterator[FeatureStore]:
    with FeatureStore(serving_repo) as store:
        write_all_rows(store)
        yield store


@pytest.fixture(scope="session")
def server(store: FeatureStore) -> Iterator[ServerHandle]:
    config = ServingConfig(port=0, metrics_port=0, max_batch_size=MAX_BATCH, max_workers=8)
    with build_server(store, config) as handle:
        yield handle


@pytest.fixture(scope="session")
def client(server: ServerHandle) -> Iterator[Client]:
    with Client(server.address) as client:
        yield client
