"""Sync of an aggregate view through materialize: each touched entity recomputed from its offline
events, in process (small local table) and on Spark executors, into a real Redis.

What Redis must hold after any sequence of materializations is the pure function of the offline
events (``AggregateWriter.entities`` of all of them): re-materializing rewrites the same bytes, a
backfill after a newer window never double-counts, a late event updates its entity, and the
Spark sync writes exactly the bytes of the in-process one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis

from granero import Entity, FeatureView, Field, FileSource
from granero.aggregation.spec import aggregation_spec
from granero.definitions import compile_definitions
from granero.definitions.aggregation import Aggregation
from granero.feature_store import FeatureStore
from granero.online.aggregate_sync import AggregateWriter
from granero.online.redis import RedisSettings
from tests.online.test_cluster import cluster_ports  # noqa: F401 (the module's cluster fixture)

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]

T0 = datetime(2026, 1, 7, tzinfo=UTC)
END = T0 + timedelta(hours=3)
MIDDLE = END - timedelta(minutes=25)  # the span (1h5m) reaches before it: backfills matter
DRIVERS = 12


def define(source: Path):
    driver = Entity(name="driver", join_keys={"driver_id": "int64"})
    view = FeatureView(
        name="trips", entities=[driver], hop="5m",
        source=FileSource(path=str(source), timestamp_field="ts", created_timestamp_field="created"),
        features=[Field(name="fare", dtype="float64")],
        aggregations=[
            *(Aggregation(column="fare", function=f, window=w) for f in ("sum", "mean", "last") for w in ("15m", "1h")),
            Aggregation(column="driver_id", function="count", window="1h", name="trips_1h"),
        ],
    )
    return compile_definitions([("driver", driver), ("trips", view)])


def random_events(seed: int, count: int = 300) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        ts = T0 + timedelta(minutes=5 * rng.randrange(36), microseconds=rng.choice([0, 1, rng.randrange(300_000_000)]))
        rows.append({"driver_id": rng.randrange(DRIVERS), "ts": ts, "created": rng.choice([None, ts]),
                     "fare": rng.choice([None, 0.1, 0.2, 7.5, 1e9])})
    return rows


EVENTS = random_events(11)


class Repo:
    """A repo of its own (project, offline tables) on the shared Redis database."""

    def __init__(self, root: Path, url: str, *, local_max_rows: int | None = None, nodes: list[int] = ()) -> None:
        root.mkdir(parents=True)
        retrieval = "" if local_max_rows is None else f"retrieval: {{local_max_rows: {local_max_rows}}}\n"
        (root / "feature_store.yaml").write_text(
            f"project: {root.name}\nregistry: {{path: registry}}\noffline_store: {{type: delta, path: offline}}\n"
            f"online_store: {{type: redis, url: '{url}', expire_keys: false, cluster: {str(bool(nodes)).lower()}}}\n"
            f"{retrieval}"
            "spark: {master: 'local[2]', conf: {spark.sql.shuffle.partitions: '2'}}\n")
        self.root, self.url, self.nodes = root, url, nodes
        self.write_source("part-0", EVENTS)
        self.store = FeatureStore(root)
        self.store.registry.write_version(root.name, define(root / "source"))

    def write_source(self, name: str, rows: list[dict]) -> None:
        (self.root / "source").mkdir(exist_ok=True)
        frame = pd.DataFrame(rows).astype({"fare": "float64"})
        frame.to_parquet(self.root / "source" / f"{name}.parquet", coerce_timestamps="us")

    def materialize(self, start: datetime, end: datetime) -> int:
        (result,) = self.store.materialize(start, end, now=END)
        return result.online_rows

    def dump(self) -> dict[bytes, list]:
        """Every key of the view (without the project prefix): members with scores, expiry."""
        prefix = f"{self.root.name}:trips:".encode()
        clients = [redis.Redis(port=p) for p in self.nodes] or [redis.Redis.from_url(self.url)]
        return {key[len(prefix):]: (client.zrange(key, 0, -1, withscores=True), client.pexpiretime(key))
                for client in clients for key in sorted(client.scan_iter(match=prefix + b"*"))}


def expected_dump(repo: Repo, rows: list[dict]) -> dict[bytes, list]:
    """What Redis must hold: every entity's members computed from all of its events."""
    stamp = pa.timestamp("us", tz="UTC")
    events = pa.table({
        "driver_id": pa.array([r["driver_id"] for r in rows], pa.int64()),
        "event_timestamp": pa.array([r["ts"] for r in rows], stamp),
        "created_timestamp": pa.array([r["created"] for r in rows], stamp),
        "fare": pa.array([r["fare"] for r in rows], pa.float64()),
    })
    defs = repo.store.registered()
    spec = aggregation_spec(defs, defs.feature_views["trips"])
    writer = AggregateWriter(RedisSettings(repo.url), repo.root.name, "trips", spec)
    return {e.key: ([(m, float(score)) for m, score in zip(e.members, e.scores, strict=True)], -1)
            for e in sorted(writer.entities(events), key=lambda e: e.key)}


@pytest.fixture(scope="module")
def url(redis_url) -> str:
    url = redis_url.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def full(tmp_path_factory, spark, url) -> Repo:
    """Everything materialized and synced in process at once: the reference."""
    repo = Repo(tmp_path_factory.mktemp("sync") / "full", url)
    assert repo.materialize(T0 - timedelta(days=1), END) == DRIVERS
    yield repo
    repo.store.close()


def test_sync_stores_the_pure_function_of_the_offline_events_and_rewrites_the_same_bytes(full):
    assert full.dump() == expected_dump(full, EVENTS)
    assert full.materialize(T0 - timedelta(days=1), END) == DRIVERS
    assert full.dump() == expected_dump(full, EVENTS)


def test_a_backfill_after_a_newer_window_never_double_counts(full, tmp_path, url):
    repo = Repo(tmp_path / "backfill", url)
    touched = {r["driver_id"] for r in EVENTS if r["ts"] >= MIDDLE}
    assert repo.materialize(MIDDLE, END) == len(touched)
    repo.materialize(T0 - timedelta(days=1), MIDDLE)
    assert repo.dump() == full.dump()
    repo.materialize(MIDDLE, END)  # and the newer window once more
    assert repo.dump() == full.dump()
    repo.store.close()


def test_a_late_event_rematerialized_updates_its_entity_only(full, tmp_path, url):
    repo = Repo(tmp_path / "late", url)
    repo.materialize(T0 - timedelta(days=1), END)
    before = repo.dump()
    late = {"driver_id": 3, "ts": END - timedelta(minutes=20), "created": END, "fare": 100.0}
    repo.write_source("late", [late])
    assert repo.materialize(END - timedelta(minutes=30), END) >= 1
    after = repo.dump()
    assert after == expected_dump(repo, [*EVENTS, late])
    changed = {key for key in after if after[key] != before.get(key)}
    assert len(changed) == 1  # driver 3's key
    repo.store.close()


def test_spark_sync_writes_the_bytes_of_the_in_process_sync(full, tmp_path, url):
    repo = Repo(tmp_path / "spark", url, local_max_rows=0)
    assert repo.materialize(T0 - timedelta(days=1), MIDDLE) > 0
    assert repo.materialize(MIDDLE, END) == len({r["driver_id"] for r in EVENTS if r["ts"] >= MIDDLE})
    assert repo.dump() == full.dump()
    assert repo.store.sync_online(["trips"]) == {"trips": DRIVERS}
    assert repo.dump() == full.dump()
    repo.store.close()


def test_a_window_left_pending_is_synced_by_granero_sync(full, tmp_path, url):
    repo = Repo(tmp_path / "pending", url)
    repo.store.materialize(T0 - timedelta(days=1), END, sync_online=False, now=END)
    assert repo.dump() == {} and repo.store.sync_progress.pending("trips")
    assert repo.store.sync_online(["trips"]) == {"trips": DRIVERS}
    assert repo.dump() == full.dump() and not repo.store.sync_progress.pending("trips")
    repo.store.close()


def test_spark_sync_into_a_cluster_writes_the_bytes_of_the_in_process_sync(full, tmp_path, cluster_ports):  # noqa: F811
    url = f"redis://127.0.0.1:{cluster_ports[0]}/0"
    repo = Repo(tmp_path / "cluster", url, local_max_rows=0, nodes=cluster_ports)
    assert repo.materialize(T0 - timedelta(days=1), END) == DRIVERS
    assert repo.dump() == full.dump()
    assert min(redis.Redis(port=p).dbsize() for p in cluster_ports) > 0  # spread over the nodes
    repo.store.close()
