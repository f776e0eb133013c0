"""Rows stamped after now: materialization stops at now, and a lookup never serves a row from
its future. Both halves on random data against the brute-force as-of oracle at ``now``."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import compile_definitions
from granero.errors import InvalidRequest
from granero.feature_store import FeatureStore
from granero.online.encoding import to_micros
from granero.online.lookup import Status, lookup
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import write_rows
from granero.registry import Interval
from tests.offline.oracle import OracleView
from tests.offline.oracle import lookup as oracle_lookup
from tests.online.conftest import NOW, request

MINUTE = timedelta(minutes=1)


# -- the read-time rule: Redis and the lookup alone ----------------------------------------------

entity_histories = st.lists(  # per entity: distinct event offsets (minutes from NOW) and values
    st.lists(
        st.tuples(st.integers(-150, 150), st.integers(0, 1000)),
        min_size=1, max_size=4, unique_by=lambda row: row[0],
    ),
    min_size=1, max_size=40,  # above and below ROW_BY_ROW_BELOW: both decoders
)


@pytest.mark.redis
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories=entity_histories)
def test_a_lookup_never_serves_a_row_stamped_after_now(online_url, defs, histories):
    view = defs.feature_views["stats"]  # ttl 1h
    rows = [
        {"driver_id": d, "event_timestamp": NOW + m * MINUTE, "conv_rate": v / 7, "trips": v,
         "tier": None}
        for d, history in enumerate(histories) for m, v in history
    ]
    store = RedisStore(RedisSettings(online_url, expire_keys=False), f"f{uuid.uuid4().hex[:10]}")
    try:  # a project of its own per example: no example sees another's keys
        write_rows(store, view, defs.join_keys(view), rows)
        asked = [{"driver_id": d} for d in range(len(histories))]
        result = lookup(store, request(defs, "stats:conv_rate", "stats:trips"), asked, NOW)
    finally:
        store.close()
    spec = OracleView("stats", ["driver_id"], to_micros(NOW) - to_micros(NOW - view.ttl),
                      ["conv_rate", "trips", "tier"])
    for d, history in enumerate(histories):
        # Redis holds the newest row written; the oracle at NOW sees only what is stored
        newest = max(history)
        stored = [{"driver_id": d, "event": to_micros(NOW + newest[0] * MINUTE), "created": None,
                   "conv_rate": newest[1] / 7, "trips": newest[1], "tier": None}]
        found = oracle_lookup({"driver_id": d, "ts": to_micros(NOW)}, stored, spec)
        values = [v.value for v in result.rows[d]]
        assert values == ([None, None] if found is None else [found["conv_rate"], found["trips"]])
        status = result.rows[d][0].status
        if newest[0] > 0:
            assert status is Status.NOT_FOUND and result.rows[d][0].event_timestamp is None
        if status is Status.PRESENT:
            assert result.rows[d][0].event_timestamp <= NOW


# -- the cap: materialization stops at now ---------------------------------------------------------

CAP = datetime(2026, 1, 5, tzinfo=UTC)
"""The ``now`` the materializations below run at (rows after it are 'in the future')."""
rider = Entity(join_keys={"rider_id": "int64"})


def random_source(seed: int, riders: int = 60) -> list[dict]:
    """0-5 rows per rider at random minutes in [CAP - 2d, CAP + 1d] (never exactly CAP); some
    riders have future rows only."""
    rng = random.Random(seed)
    rows = []
    for r in range(riders):
        minutes = rng.sample([m for m in range(-2 * 1440, 1440) if m != 0], rng.randint(0, 5))
        rows += [{"rider_id": r, "ts": CAP + m * MINUTE, "score": rng.random()} for m in minutes]
    return rows


def capped_store(root: Path, redis_url: str, rows: list[dict]) -> FeatureStore:
    root.mkdir(parents=True, exist_ok=True)
    (root / "source").mkdir()
    pd.DataFrame(rows, columns=["rider_id", "ts", "score"]).astype({"rider_id": "int64"}).to_parquet(
        root / "source" / "part-0.parquet", coerce_timestamps="us")
    (root / "feature_store.yaml").write_text(
        "project: future\nregistry: {path: registry}\noffline_store: {type: delta, path: offline}\n"
        f"online_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n"
    )
    view = FeatureView(entities=[rider], source=FileSource(path=str(root / "source"),
                       timestamp_field="ts"), ttl="1d", features=[Field(name="score", dtype="float64")])
    store = FeatureStore(root)
    store.registry.write_version("future", compile_definitions([("rider", rider), ("scores", view)]))
    return store


@pytest.mark.spark
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_materialization_stops_at_now_so_online_equals_the_oracle_at_now(
    spark, tmp_path, redis_url, seed
):
    rows = random_source(seed)
    db = redis_url.rsplit("/", 1)[0] + f"/{8 + seed}"
    store = capped_store(tmp_path / "repo", db, rows)
    asked_end = CAP + timedelta(days=3)
    [result] = store.materialize(CAP - timedelta(days=3), asked_end, now=CAP)
    assert (result.end, result.asked_end) == (CAP, asked_end)
    assert store.registry.materialized() == {
        "scores": [Interval(start=CAP - timedelta(days=3), end=CAP)]
    }
    assert store.materialize_incremental(asked_end, now=CAP) == []  # up to now already

    riders = sorted({row["rider_id"] for row in rows} | {999})
    served = store.get_online_features(
        [{"rider_id": r} for r in riders], ["scores:score"], now=CAP
    ).to_dict()["scores__score"]
    spec = OracleView("scores", ["rider_id"], to_micros(CAP) - to_micros(CAP - timedelta(days=1)),
                      ["score"])
    history = [{"rider_id": r["rider_id"], "event": to_micros(r["ts"]), "created": None,
                "score": r["score"]} for r in rows]
    expected = [oracle_lookup({"rider_id": r, "ts": to_micros(CAP)}, history, spec) for r in riders]
    assert served == [None if e is None else e["score"] for e in expected]
    assert any(r["ts"] > CAP for r in rows)  # the data did hold future rows
    report = store.verify(now=CAP)
    assert report.ok and report.views[0].checked == report.views[0].total
    store.close()


@pytest.mark.spark
def test_a_window_starting_after_now_is_refused_and_the_real_clock_caps(spark, tmp_path, redis_url):
    store = capped_store(tmp_path / "repo", redis_url.rsplit("/", 1)[0] + "/11", random_source(3))
    with pytest.raises(InvalidRequest, match="not before now"):
        store.materialize(CAP + MINUTE, CAP + timedelta(days=1), now=CAP)
    before = datetime.now(UTC)
    [result] = store.materialize(CAP, before + timedelta(days=365), sync_online=False)
    assert before <= result.end <= datetime.now(UTC) and result.asked_end is not None
    store.close()
