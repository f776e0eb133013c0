"""Sync of small local tables in process: the same latest rows, stored byte for byte as the
Spark executors store them, and no JVM needed.

The rule (greatest (event, created) per typed key, a null created lowest, null keys dropped) is
checked against a plain-Python oracle on random tables with ties, nulls and composite keys; the
whole path is compared with the Spark sync on the example repo, whole tables and one window.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from granero import FeatureStore
from granero.offline.as_of_now import _latest_per_key, latest_rows_arrow
from granero.online.redis import RedisStore
from granero.online.sync import sync_view, write_table
from granero.registry.intervals import Interval
from tests.conftest import DATA_END, scaled

BASE = datetime(2026, 1, 1, tzinfo=UTC)

row = st.tuples(
    st.one_of(st.none(), st.integers(0, 2)),            # key a (int64)
    st.one_of(st.none(), st.sampled_from(["x", "y"])),  # key b (string)
    st.integers(0, 3),                                   # event, few values: ties
    st.one_of(st.none(), st.integers(0, 2)),            # created, null lowest
)


def latest_by_oracle(rows: list[tuple]) -> dict[tuple, tuple]:
    """Per non-null key, the greatest (event, created) row, by brute force."""
    best: dict[tuple, tuple] = {}
    for a, b, event, created in rows:
        if a is None or b is None:
            continue
        rank = (event, -1 if created is None else created)
        current = best.get((a, b))
        if current is None or rank > (current[2], -1 if current[3] is None else current[3]):
            best[(a, b)] = (a, b, event, created)
    return best


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(row, max_size=40))
def test_latest_per_key_follows_the_rule(rows):
    distinct = list({(a, b, e, c): None for a, b, e, c in rows})  # the table holds no full ties
    table = pa.table({
        "a": pa.array([r[0] for r in distinct], pa.int64()),
        "b": pa.array([r[1] for r in distinct], pa.string()),
        "event_timestamp": pa.array([BASE + timedelta(seconds=r[2]) for r in distinct],
                                    pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array([None if r[3] is None else BASE + timedelta(seconds=r[3])
                                       for r in distinct], pa.timestamp("us", tz="UTC")),
    })
    picked = table.take(_latest_per_key(table, ["a", "b"], ["int64", "string"]))
    got = {
        (a, b): (a, b, int((e - BASE).total_seconds()), None if c is None else int((c - BASE).total_seconds()))
        for a, b, e, c in zip(*(picked[n].to_pylist() for n in picked.column_names), strict=True)
    }
    assert got == latest_by_oracle(distinct)
    assert picked.num_rows == len(got)  # one row per key


def stored(url: str, project: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(url)
    prefix = project.encode() + b":"
    return {k.removeprefix(prefix): client.get(k) for k in client.scan_iter(match=prefix + b"*")}


WINDOW = Interval(start=DATA_END - timedelta(hours=20), end=DATA_END - timedelta(hours=3))


@pytest.mark.spark
@pytest.mark.redis
@pytest.mark.parametrize("interval", [None, WINDOW])
def test_in_process_sync_stores_what_the_spark_sync_stores(materialized_repo, example_url, interval):
    """Every online view of the example repo, whole tables and one window: same keys, same bytes."""
    with FeatureStore(materialized_repo) as store:
        defs, settings_ = store.registered(), store.online_store.settings
        sides = {side: f"sync_{side}_{interval is None}" for side in ("spark", "local")}
        for view in (v for v in defs.feature_views.values() if v.online):
            keys = defs.join_keys(view)
            sync_view(store.latest_rows(view.name, interval), settings_, sides["spark"], view, keys)
            latest = latest_rows_arrow(store.offline_store, defs, view, interval, 10**9)
            assert latest is not None
            local = RedisStore(settings_, sides["local"])
            try:
                write_table(local, view, keys, latest)
            finally:
                local.close()
        spark_side, local_side = stored(example_url, sides["spark"]), stored(example_url, sides["local"])
        assert spark_side, "the example repo syncs rows"
        assert local_side == spark_side


@pytest.mark.spark
def test_a_large_or_spark_only_table_is_left_to_spark(materialized_repo):
    with FeatureStore(materialized_repo) as store:
        defs = store.registered()
        view = next(v for v in defs.feature_views.values() if v.online)
        assert latest_rows_arrow(store.offline_store, defs, view, None, 0) is None  # 0: always Spark
        assert latest_rows_arrow(store.offline_store, defs, view, None, 1) is None  # too many rows
        assert latest_rows_arrow(store.offline_store, defs, view, None, 10**9) is not None


@pytest.mark.spark
@pytest.mark.redis
def test_sync_of_a_small_local_repo_starts_no_jvm(materialized_repo):
    code = (
        "import json, sys\n"
        "from granero.feature_store import FeatureStore\n"
        "with FeatureStore(sys.argv[1]) as store:\n"
        "    counts = store.sync_online()\n"
        "pyspark = sys.modules.get('pyspark')\n"
        "jvm = pyspark is not None and pyspark.SparkContext._gateway is not None\n"
        "print(json.dumps({'rows': sum(counts.values()), 'views': len(counts), 'jvm': jvm}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(materialized_repo)],
                          capture_output=True, text=True, timeout=scaled(300), check=True)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["jvm"] is False and outcome["views"] >= 1 and outcome["rows"] > 0
