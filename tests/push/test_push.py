"""FeatureStore.push in process, on a real redis-server: served at once, write-if-newer, typed
validation that writes nothing on failure, idempotent landing, every input container."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero.errors import InvalidRequest, NotFound
from granero.feature_store import FeatureStore
from granero.freshness.online_writes import online_event_times
from granero.offline.landing import landing_location, read_landed_arrow
from granero.online.encoding import to_micros
from tests.push.conftest import TS, at

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:tier"]


def row(driver: int, minute: float, conv_rate: float | None = 0.9, trips: int | None = 7,
        tier: str | None = "gold", **more: object) -> dict:
    return {"driver_id": driver, "event_timestamp": at(minute), "conv_rate": conv_rate,
            "trips": trips, "tier": tier, **more}


def served(store: FeatureStore, driver: int) -> dict:
    result = store.get_online_features([{"driver_id": driver}], FEATURES, now=at(600))
    return {name.split("__")[1]: values[0] for name, values in result.to_dict().items()}


def landed(store: FeatureStore, view: str = "driver_stats") -> pa.Table | None:
    return read_landed_arrow(landing_location(store.config.offline_store.path), view, None)


def redis_snapshot(store: FeatureStore) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(store.online_store.settings.url)
    try:
        return {key: client.dump(key) for key in client.scan_iter(f"{store.config.project}:*")}
    finally:
        client.close()


def landing_files(store: FeatureStore) -> list[Path]:
    return sorted(Path(landing_location(store.config.offline_store.path)).rglob("*.parquet"))


def test_a_pushed_value_is_served_at_once(store: FeatureStore) -> None:
    result = store.push("driver_stats", [row(1, 30, conv_rate=0.75, trips=11, tier="platinum")])
    assert (result.rows, result.online_rows, result.landed) == (1, 1, True)
    assert served(store, 1) == {"conv_rate": 0.75, "trips": 11, "tier": "platinum"}
    lookup = store.get_online_features([{"driver_id": 1}], FEATURES, now=at(600))
    assert lookup.rows[0][0].event_timestamp == at(30)
    assert online_event_times(store.online_store)["driver_stats"] == to_micros(at(30))  # freshness


def test_a_push_to_offline_only_records_no_online_freshness(store: FeatureStore) -> None:
    store.push("driver_stats", [row(1, 30)], to="offline")
    assert "driver_stats" not in online_event_times(store.online_store)


def test_an_older_push_does_not_overwrite_a_newer_one(store: FeatureStore) -> None:
    store.push("driver_stats", [row(1, 30, conv_rate=0.3)])
    older = store.push("driver_stats", [row(1, 20, conv_rate=0.2)])
    assert older.online_rows == 0
    assert served(store, 1)["conv_rate"] == 0.3
    assert landed(store).num_rows == 2  # both land: training as of minute 25 needs the older one


pushes = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 20), st.integers(0, 3),
                            st.floats(0, 1)), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pushes=pushes)
def test_served_value_is_the_latest_pushed_whatever_the_order(tmp_path_factory, push_url, pushes) -> None:
    """Against an oracle: after any sequence of single-row pushes, each driver's served row is
    its greatest (event_timestamp, created_timestamp) pushed."""
    from tests.push.conftest import write_push_repo

    repo = write_push_repo(tmp_path_factory.mktemp("order") / "repo", push_url)
    with FeatureStore(repo) as store:
        store.apply()
        latest: dict[int, tuple] = {}
        for driver, minute, created, rate in pushes:
            store.push("driver_stats", [row(driver, minute, conv_rate=rate, created_timestamp=at(created))])
            version = (minute, created)
            if driver not in latest or version >= latest[driver][0]:  # a full tie: the later
                latest[driver] = (version, rate)
        for driver, (_, rate) in latest.items():
            assert served(store, driver)["conv_rate"] == rate


BAD = {
    "unknown column": ([row(1, 1, speed=3)], "'speed'"),
    "missing feature": ([{"driver_id": 1, "event_timestamp": at(1), "conv_rate": 0.1, "trips": 1}], "'tier'"),
    "missing key": ([{"event_timestamp": at(1), "conv_rate": 0.1, "trips": 1, "tier": "a"}], "'driver_id'"),
    "missing timestamp": ([{"driver_id": 1, "conv_rate": 0.1, "trips": 1, "tier": "a"}], "'event_timestamp'"),
    "null key": ([row(1, 1), row(None, 1)], "'driver_id'.*row 1"),
    "null timestamp": ([row(1, 1), row(2, 1) | {"event_timestamp": None}], "'event_timestamp'.*row 1"),
    "text for a float": ([row(1, 1), row(2, 1, conv_rate="fast")], "'conv_rate'.*row 1"),
    "fraction for an int": ([row(1, 1), row(2, 1, trips=2.5)], "'trips'"),
    "int32 overflow": ([row(1, 1), row(2, 1), row(3, 1, trips=2**40)], "'trips'.*row 2"),
    "bool for an int": ([row(1, 1, trips=True)], "'trips'.*boolean"),
    "number for a timestamp": ([row(1, 1) | {"event_timestamp": 5}], "'event_timestamp'.*time unit"),
    "unparsable time": ([row(1, 1) | {"event_timestamp": "yesterday"}], "'event_timestamp'.*row 0"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_an_invalid_push_names_the_column_and_writes_nothing(store: FeatureStore, case: str) -> None:
    store.push("driver_stats", [row(5, 1)], batch_id="before")  # a value that must survive
    before, files = redis_snapshot(store), landing_files(store)
    rows, message = BAD[case]
    with pytest.raises(InvalidRequest, match=f"'driver_stats'.*{message}"):
        store.push("driver_stats", rows)
    assert redis_snapshot(store) == before
    assert landing_files(store) == files


def test_the_same_batch_id_lands_once(store: FeatureStore) -> None:
    store.push("driver_stats", [row(1, 10)], batch_id="b-1")
    again = store.push("driver_stats", [row(1, 10)], batch_id="b-1")
    assert again.batch_id == "b-1"
    assert landed(store).num_rows == 1
    store.push("driver_stats", [row(2, 10)])
    store.push("driver_stats", [row(2, 10)])  # no id: the rows' hash is the id
    assert landed(store).num_rows == 2


def test_every_container_and_lossless_conversion(store: FeatureStore) -> None:
    """pandas (int64 and nullable ints, NaN as null), Arrow (int8 keys, float32), dicts of
    columns, ISO strings for times: each converts exactly to the declared dtypes."""
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": pd.to_datetime([at(1), at(2)]),
                          "conv_rate": [0.5, float("nan")], "trips": pd.array([1, None], "Int64"),
                          "tier": ["a", None]})
    store.push("driver_stats", frame)
    assert served(store, 2) == {"conv_rate": None, "trips": None, "tier": None}
    table = pa.table({"driver_id": pa.array([3], pa.int8()), "event_timestamp": pa.array([at(3)], TS),
                      "conv_rate": pa.array([0.25], pa.float32()), "trips": pa.array([9], pa.int64()),
                      "tier": pa.array(["b"])})
    store.push("driver_stats", table)
    store.push("driver_stats", {"driver_id": [4], "event_timestamp": ["2026-01-07T00:04:00Z"],
                                "conv_rate": [1], "trips": [2], "tier": ["c"]})
    assert served(store, 3) == {"conv_rate": 0.25, "trips": 9, "tier": "b"}
    assert served(store, 4) == {"conv_rate": 1.0, "trips": 2, "tier": "c"}
    assert landed(store)["event_timestamp"].to_pylist()[-1] == at(4)


def test_targets(store: FeatureStore) -> None:
    store.push("driver_stats", [row(1, 10, conv_rate=0.1)], to="offline")
    assert served(store, 1)["conv_rate"] is None and landed(store).num_rows == 1
    store.push("driver_stats", [row(1, 11, conv_rate=0.2)], to="online")
    assert served(store, 1)["conv_rate"] == 0.2 and landed(store).num_rows == 1
    with pytest.raises(InvalidRequest, match="to must be one of"):
        store.push("driver_stats", [row(1, 12)], to="both")
    with pytest.raises(NotFound, match="'nope'"):
        store.push("nope", [row(1, 12)])


def test_a_thousand_rows_in_one_push(store: FeatureStore) -> None:
    rows = [row(driver, 5, conv_rate=driver / 1000, trips=driver) for driver in range(1000)]
    result = store.push("driver_stats", rows)
    assert (result.rows, result.online_rows) == (1000, 1000)
    assert served(store, 999) == {"conv_rate": 0.999, "trips": 999, "tier": "gold"}
    assert landed(store).num_rows == 1000


def test_rows_over_the_limit_are_refused(store: FeatureStore) -> None:
    limits = store.config.serving.limits.model_copy(update={"max_push_rows": 3})
    store.config.serving.limits = limits
    with pytest.raises(InvalidRequest, match="4 rows exceed serving.limits.max_push_rows 3"):
        store.push("driver_stats", [row(d, 1) for d in range(4)])
    assert landing_files(store) == []


def test_pushed_events_recompute_an_aggregate_view_online(store: FeatureStore) -> None:
    """An aggregate view's pushed events join its offline events (none materialized here) and
    the landed ones: the served sums count each event once, a resend included."""
    refs = ["driver_trips:fares", "driver_trips:trips"]
    events = [{"driver_id": 1, "event_timestamp": at(1), "fare": 2.0},
              {"driver_id": 1, "event_timestamp": at(2), "fare": 3.0}]
    store.push("driver_trips", events)
    store.push("driver_trips", events)  # the same rows: the same batch, landed once
    store.push("driver_trips", [{"driver_id": 1, "event_timestamp": at(3), "fare": 5.0}])
    values = store.get_online_features([{"driver_id": 1}], refs, now=at(10)).to_dict()
    assert values == {"driver_trips__fares": [10.0], "driver_trips__trips": [3]}
    store.push("driver_trips", [{"driver_id": 1, "event_timestamp": at(4), "fare": 1.0}], to="online")
    values = store.get_online_features([{"driver_id": 1}], refs, now=at(10)).to_dict()
    assert values == {"driver_trips__fares": [11.0], "driver_trips__trips": [4]}  # not landed, counted
