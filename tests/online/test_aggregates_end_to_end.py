"""Aggregates end to end on a real repo: events materialized by Spark into the offline table and
synced to Redis; the online value at t equals the training value (``get_historical_features``,
both engines) of an entity row at t, exactly, at every tail crossing; ``verify`` covers the
aggregate view (ok at many t, a corrupted entity found and named); late events re-materialized
are counted online and offline alike, never twice."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import compile_definitions
from granero.definitions.aggregation import Aggregation
from granero.feature_store import FeatureStore
from granero.online.encoding import encode_entity_key, key_prefix

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]

T0 = datetime(2026, 1, 7, tzinfo=UTC)
HOP = timedelta(minutes=5)
WINDOWS = (timedelta(minutes=15), timedelta(hours=1))
END = T0 + timedelta(hours=3)
DRIVERS = 24
FUNCTIONS = {"fare": ("count", "sum", "mean", "max", "stddev", "last"), "tier": ("distinct_count", "first"),
             "driver_id": ("count",)}


def define(source: Path):
    driver = Entity(name="driver", join_keys={"driver_id": "int64"})
    view = FeatureView(
        name="trips", entities=[driver], hop="5m",
        source=FileSource(path=str(source), timestamp_field="ts", created_timestamp_field="created"),
        features=[Field(name="fare", dtype="float64"), Field(name="tier", dtype="string")],
        aggregations=[Aggregation(column=c, function=f, window=w) for c, fs in FUNCTIONS.items() for f in fs
                      for w in WINDOWS],
    )
    return compile_definitions([("driver", driver), ("trips", view)])


def events(rng: random.Random, count: int, start: datetime, end: datetime) -> list[dict]:
    """Times on hop edges (±1 µs) and at random, ties, null fares and created times."""
    span = int((end - start) / HOP)
    rows = []
    for _ in range(count):
        edge = start + HOP * rng.randrange(span)
        ts = edge + rng.choice([timedelta(0), timedelta(microseconds=1), HOP - timedelta(microseconds=1),
                                timedelta(seconds=rng.randrange(300))])
        rows.append({"driver_id": rng.randrange(DRIVERS), "ts": ts,
                     "created": rng.choice([None, ts, ts + timedelta(hours=2)]),
                     "fare": rng.choice([None, 0.1, 0.2, 7.5, 1e9, -0.0]),
                     "tier": rng.choice([None, "gold", "silver"])})
    return rows


def write_source(folder: Path, name: str, rows: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    frame = pd.DataFrame(rows).astype({"fare": "float64"})
    frame.to_parquet(folder / f"{name}.parquet", coerce_timestamps="us")


EVENTS = events(random.Random(5), 400, T0, END)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, spark, redis_url) -> FeatureStore:
    url = redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(url).flushdb()
    root = tmp_path_factory.mktemp("aggregates") / "repo"
    root.mkdir()
    (root / "feature_store.yaml").write_text(
        "project: agg\nregistry: {path: registry}\noffline_store: {type: delta, path: offline}\n"
        f"online_store: {{type: redis, url: '{url}', expire_keys: false}}\n"
        "spark: {master: 'local[2]', conf: {spark.sql.shuffle.partitions: '2'}}\n")
    write_source(root / "source", "part-0", EVENTS)
    store = FeatureStore(root)
    store.registry.write_version("agg", define(root / "source"))
    store.materialize(T0 - timedelta(days=1), END)  # synced online
    yield store
    store.close()


def request_times(rows: list[dict]) -> list[datetime]:
    """From the newest event on: every tail crossing, a microsecond before it, and the newest
    event's own time (materialization never stores a later event than its run)."""
    newest = max(row["ts"] for row in rows)
    crossings = [END + k * HOP + d for k in range(-1, 14) for d in (timedelta(0), -timedelta(microseconds=1))]
    return sorted({newest, *(t for t in crossings if t >= newest)}) + [END + timedelta(days=1)]


def bits(value):
    if isinstance(value, float):
        return struct.pack("<d", value)
    return value


def assert_online_equals_training(store: FeatureStore, times: list[datetime], engine: str) -> int:
    drivers = [{"driver_id": d} for d in range(DRIVERS + 2)]
    asked = pd.DataFrame([{**d, "event_timestamp": t} for t in times for d in drivers])
    training = store.get_historical_features_pandas(asked, ["trips:*"], engine=engine)
    names = store.registered().feature_views["trips"].output_names
    for i, t in enumerate(times):
        served = store.get_online_features(drivers, ["trips:*"], now=t).to_dict()
        rows = training.iloc[i * len(drivers) : (i + 1) * len(drivers)]
        for name in names:
            want = [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in rows[f"trips__{name}"]]
            assert [bits(v) for v in served[f"trips__{name}"]] == [bits(v) for v in want], (name, t, engine)
    return len(times) * len(drivers) * len(names)


def test_online_at_t_equals_training_at_t_on_both_engines(repo):
    times = request_times(EVENTS)
    assert assert_online_equals_training(repo, times, "local") > 10_000
    assert_online_equals_training(repo, times[::4], "spark")


def test_verify_covers_aggregates_and_finds_a_corrupted_entity(repo):
    for t in request_times(EVENTS)[::5]:
        report = repo.verify(now=t)
        assert report.ok, report.to_dict()
        assert [(v.view, v.checked) for v in report.views] == [("trips", DRIVERS)]
    retrieval = repo.config.retrieval.model_copy(update={"local_max_rows": 0})  # Spark answers
    with FeatureStore(repo.repo_path, config=repo.config.model_copy(update={"retrieval": retrieval})) as spark:
        report = spark.verify(now=END)
    assert report.ok and [(v.checked, v.engine) for v in report.views] == [(DRIVERS, "spark")]
    newest = max(EVENTS, key=lambda row: row["ts"])
    victim, now = newest["driver_id"], newest["ts"]  # its counts over every window are >= 1 at now
    client = redis.Redis.from_url(repo.online_store.settings.url)
    client.delete(key_prefix("agg", "trips") + encode_entity_key(["int64"], [victim]))
    [view] = repo.verify(now=now).views
    assert view.mismatches > 0 and {m.entity["driver_id"] for m in view.examples} == {victim}
    assert {m.status for m in view.examples} <= {"PRESENT", "NULL_VALUE"}  # the empty window's values
    repo.sync_online(["trips"])
    assert repo.verify(now=now).ok


def test_late_events_rematerialized_count_once_online_and_offline(repo):
    """Events arriving late (event times inside the stored windows) and the same window
    materialized twice: online equals training over all events; nothing counts twice."""
    recent = events(random.Random(6), 60, END - timedelta(hours=1), END)
    late = [{**row, "created": END + timedelta(hours=1)} for row in recent]
    write_source(repo.repo_path / "source", "part-1", late)
    for _ in range(2):
        repo.materialize(END - timedelta(hours=2), END)
    times = request_times(EVENTS + late)
    assert_online_equals_training(repo, times, "local")
    newest = times[0]
    served = repo.get_online_features([{"driver_id": d} for d in range(DRIVERS)], ["trips:driver_id_count_1h"],
                                      now=newest).to_dict()["trips__driver_id_count_1h"]
    oracle = [sum(1 for row in EVENTS + late if row["driver_id"] == d
                  and newest - WINDOWS[1] - (newest - WINDOWS[1] - T0) % HOP <= row["ts"] <= newest)
              for d in range(DRIVERS)]
    assert served == oracle
