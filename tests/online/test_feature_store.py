"""The FeatureStore's online methods on the example repo, end to end: materialize (which syncs
from the Spark executors), re-sync and lookups. verify runs through the CLI (test_online_cmds)."""

from __future__ import annotations

import json
import runpy
from datetime import timedelta

import pytest
import redis

from granero.errors import InvalidRequest, NotFound
from granero.feature_store import FeatureStore
from granero.online.encoding import to_micros
from granero.online.lookup import Status
from tests.conftest import DATA_END, ROOT

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]


def snapshot(url: str) -> dict[bytes, object]:
    """Every key of the example project: a plain view's value, an aggregate view's members."""
    client = redis.Redis.from_url(url)
    return {key: client.get(key) if client.type(key) == b"string" else client.zrange(key, 0, -1, withscores=True)
            for key in client.scan_iter(match=b"rides:*")}


def test_sync_wrote_every_entity_and_rerunning_changes_nothing(
    materialized_repo, example_url, capsys
):
    before = snapshot(example_url)
    with FeatureStore(materialized_repo) as store:
        assert store.sync_online() == {
            "customer_profile": 10,
            "driver_hourly_stats": 10,
            "route_stats": 36,
            "driver_trips": 10,
        }
        with pytest.raises(NotFound, match="no feature view named 'nope'"):
            store.sync_online(["nope"])
    assert len(before) == 66 and snapshot(example_url) == before
    job = runpy.run_path(
        str(ROOT / "spark_jobs" / "sync_online.py")
    )  # the spark-submit entry point
    assert job["main"](["--repo", str(materialized_repo), "--views", "route_stats"]) == 0
    assert json.loads(capsys.readouterr().out) == {"route_stats": 36}
    assert snapshot(example_url) == before


def test_lookups_serve_the_latest_offline_rows(materialized_repo):
    with FeatureStore(materialized_repo) as store:
        frame = store.latest_rows("driver_hourly_stats")
        latest = {
            r["driver_id"]: r
            for r in frame.selectExpr("*", "unix_micros(event_timestamp) AS at").collect()
        }
        rows = [
            {"driver_id": d, "customer_id": 2001, "pickup_zone": 1, "dropoff_zone": 2}
            for d in (1001, 9999)
        ]
        result = store.get_online_features(rows, feature_service="trip_eta_model", now=DATA_END)
        late = store.get_online_features(
            rows[:1], ["route_stats:trips_last_hour"], now=DATA_END + timedelta(hours=7)
        )
        with pytest.raises(InvalidRequest, match="entity row 0: join key 'driver_id'"):
            store.get_online_features(
                [{"driver_id": "1001"}], ["driver_hourly_stats:conv_rate"], now=DATA_END
            )
    first, unknown = result.rows
    assert result.feature_names[:3] == [
        "driver_hourly_stats__conv_rate",
        "driver_hourly_stats__acc_rate",
        "driver_hourly_stats__trips_per_hour",
    ]
    assert first[1].value == latest[1001]["acc_rate"] and first[1].status is Status.PRESENT
    assert to_micros(first[1].event_timestamp) == latest[1001]["at"]
    assert [v.status for v in unknown[:3]] == [Status.NOT_FOUND] * 3
    assert late.rows[0][0].status is Status.OUTSIDE_MAX_AGE  # route_stats ttl is 6h


def test_materialize_syncs_only_its_window_and_sync_rebuilds_everything(
    materialized_repo, example_url
):
    """After a window is materialized only that window's latest rows are written (write-if-newer
    makes them enough); ``sync_online`` rewrites every entity from the whole table."""
    from granero.offline.materialize import window

    client, before = redis.Redis.from_url(example_url), snapshot(example_url)
    driver_keys = [k for k in before if k.startswith(b"rides:driver_hourly_stats:")]
    last_hour = window(DATA_END - timedelta(hours=1), DATA_END)
    with FeatureStore(materialized_repo) as store:
        in_window = store.latest_rows("driver_hourly_stats", last_hour).count()
        client.delete(*driver_keys)
        store.materialize(last_hour.start, last_hour.end, ["driver_hourly_stats"])
        synced = [k for k in snapshot(example_url) if k.startswith(b"rides:driver_hourly_stats:")]
        assert 0 < len(synced) == in_window < len(driver_keys)
        assert {k: before[k] for k in synced} == {k: client.get(k) for k in synced}
        store.sync_online(["driver_hourly_stats"])
    assert snapshot(example_url) == before
