"""sync_view from real Spark executors into a real redis-server: what lands, that re-running
changes nothing, that a backfill of older rows never overwrites, and every dtype through Arrow."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
import redis

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import compile_definitions
from granero.errors import MaterializationError, OnlineStoreUnavailable
from granero.online.lookup import Status, lookup
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import sync_view, write_rows
from granero.types import SCALARS, spark_ddl
from tests.online.conftest import FRESH, NOW, request

pytestmark = [pytest.mark.spark, pytest.mark.redis]

STATS_SCHEMA = (
    "driver_id bigint, event_timestamp timestamp, created_timestamp timestamp, "
    "conv_rate double, trips bigint, tier string, event_date date"
)


def stats_frame(spark, rows):
    return spark.createDataFrame([(*r, r[1].date()) for r in rows], STATS_SCHEMA)


def snapshot(store: RedisStore) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(store.settings.url)
    return {k: client.get(k) for k in client.scan_iter(match=store.project.encode() + b":*")}


def test_sync_writes_latest_rows_and_rerunning_changes_nothing(spark, replay_store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    rows = [
        (d, FRESH, FRESH + timedelta(seconds=d), d / 100, d, None if d % 2 else "gold")
        for d in range(250)
    ]
    frame = stats_frame(spark, [*rows, (None, FRESH, None, 1.0, 1, "no key")]).repartition(3)
    assert (
        sync_view(frame, replay_store.settings, replay_store.project, view, keys, batch_size=64)
        == 250
    )
    result = lookup(
        replay_store, request(defs, "stats:*"), [{"driver_id": 7}, {"driver_id": 8}], NOW
    )
    assert result.to_dict() == {
        "stats__conv_rate": [0.07, 0.08],
        "stats__trips": [7, 8],
        "stats__tier": [None, "gold"],
    }
    assert [v.status for v in result.rows[0]] == [Status.PRESENT, Status.PRESENT, Status.NULL_VALUE]
    before = snapshot(replay_store)
    assert len(before) == 250
    assert (
        sync_view(frame, replay_store.settings, replay_store.project, view, keys) == 250
    )  # equal versions
    assert snapshot(replay_store) == before


def test_a_backfill_of_older_rows_never_overwrites(spark, replay_store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    current = stats_frame(spark, [(d, FRESH, None, 0.9, 9, "new") for d in range(20)])
    older = stats_frame(
        spark, [(d, FRESH - timedelta(hours=d + 1), None, 0.1, 1, "old") for d in range(30)]
    )
    sync_view(current, replay_store.settings, replay_store.project, view, keys)
    before = snapshot(replay_store)
    assert (
        sync_view(older, replay_store.settings, replay_store.project, view, keys) == 10
    )  # only new keys
    after = snapshot(replay_store)
    assert {k: after[k] for k in before} == before
    result = lookup(
        replay_store, request(defs, "stats:tier"), [{"driver_id": 0}, {"driver_id": 25}], NOW
    )
    assert result.to_dict() == {
        "stats__tier": ["new", None]
    }  # 25's backfilled row is 26h old: outside ttl


def test_several_rows_per_entity_leave_the_newest(spark, replay_store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    versions = [
        (FRESH - timedelta(minutes=m), FRESH - timedelta(minutes=c))
        for m in range(3)
        for c in range(3)
    ]
    frame = stats_frame(
        spark, [(1, e, c, 0.0, i, None) for i, (e, c) in enumerate(versions)]
    ).repartition(4)
    sync_view(frame, replay_store.settings, replay_store.project, view, keys)
    assert lookup(
        replay_store, request(defs, "stats:trips"), [{"driver_id": 1}], NOW
    ).to_dict() == {"stats__trips": [0]}


def test_every_dtype_from_spark_matches_the_python_write_path(spark, replay_store, online_url):
    dtypes = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
    names = [d.replace("<", "_").replace(">", "") for d in dtypes]
    entity = Entity(join_keys={"k": "string", "at": "timestamp", "flag": "bool", "blob": "bytes"})
    view = FeatureView(
        entities=[entity],
        source=FileSource(path="x", timestamp_field="ts"),
        ttl="1d",
        features=[Field(name=n, dtype=d) for n, d in zip(names, dtypes, strict=True)],
    )
    defs = compile_definitions([("entity", entity), ("all_types", view)])
    view = defs.feature_views["all_types"]
    keys = defs.join_keys(view)
    moment = datetime(2025, 6, 1, 12, 0, 0, 654321, tzinfo=UTC)
    scalars = {
        "int32": 7,
        "int64": 2**40,
        "float32": 0.5,
        "float64": 0.1,
        "bool": True,
        "string": "é",
        "bytes": b"\x00\x01",
        "timestamp": moment,
    }
    values = [scalars[d] if d in scalars else [scalars[d[5:-1]], None] for d in dtypes]
    key = {"k": "a:b", "at": moment, "flag": False, "blob": b"{x}"}
    schema = ", ".join(
        [f"`{k}` {spark_ddl(d)}" for k, d in keys.items()]
        + ["event_timestamp timestamp", "created_timestamp timestamp"]
        + [f"`{n}` {spark_ddl(d)}" for n, d in zip(names, dtypes, strict=True)]
    )
    frame = spark.createDataFrame([(*key.values(), FRESH, None, *values)], schema)
    assert sync_view(frame, replay_store.settings, replay_store.project, view, keys) == 1
    from_spark = snapshot(replay_store)
    other = RedisStore(RedisSettings(online_url, expire_keys=False), replay_store.project + "x")
    write_rows(
        other,
        view,
        keys,
        [{**key, "event_timestamp": FRESH, **dict(zip(names, values, strict=True))}],
    )
    assert list(snapshot(other).values()) == list(from_spark.values())  # byte-identical values
    assert [k.split(b":", 2)[2] for k in snapshot(other)] == [
        k.split(b":", 2)[2] for k in from_spark
    ]
    result = lookup(replay_store, request(defs, "all_types:*"), [key], NOW)
    assert [v.value for v in result.rows[0]][:8] == [
        7,
        2**40,
        0.5,
        0.1,
        True,
        "é",
        b"\x00\x01",
        moment,
    ]
    assert result.rows[0][8].value == [7, None]
    other.close()


def test_unreachable_redis_fails_the_sync_with_a_clear_error(spark, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    frame = stats_frame(spark, [(1, FRESH, None, 0.5, 1, None)])
    dead = RedisSettings("redis://127.0.0.1:1/0", socket_timeout_seconds=0.2, expire_keys=False)
    with pytest.raises(OnlineStoreUnavailable, match="syncing view 'stats'.*127.0.0.1:1"):
        sync_view(frame, dead, "p", view, keys)


def test_event_date_is_not_needed(spark, replay_store, defs):
    view, keys = defs.feature_views["daily"], defs.join_keys(defs.feature_views["daily"])
    frame = spark.createDataFrame(
        [(3, FRESH, 4.0, date(2026, 1, 7))],
        "driver_id bigint, event_timestamp timestamp, rating float, event_date date",
    )
    assert (
        sync_view(frame, replay_store.settings, replay_store.project, view, keys) == 1
    )  # no created column
    assert lookup(
        replay_store, request(defs, "daily:rating"), [{"driver_id": 3}], NOW
    ).to_dict() == {"daily__rating": [4.0]}


def test_a_table_missing_a_feature_column_fails_naming_the_view(spark, replay_store, defs):
    view, keys = defs.feature_views["stats"], defs.join_keys(defs.feature_views["stats"])
    frame = stats_frame(spark, [(1, FRESH, None, 0.5, 1, None)]).drop("tier")
    with pytest.raises(
        MaterializationError, match="syncing view 'stats' to the online store failed: .*tier"
    ):
        sync_view(frame, replay_store.settings, replay_store.project, view, keys)


def test_the_executor_side_imports_neither_spark_nor_the_facade():
    code = (
        "import sys, granero.online.sync; print(sorted(m for m in ('pyspark', 'py4j', 'grpc', "
        "'granero.feature_store', 'granero.offline', 'granero.registry') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
