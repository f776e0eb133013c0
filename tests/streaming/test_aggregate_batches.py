"""Micro-batches of an aggregate view (the stream job's ``foreachBatch`` called directly, in
process, on static batches as Spark hands them over): events appended to the offline table
once, a replayed batch included, and the online aggregates recomputed from those events equal
training's at the same time, for random out-of-order events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import compile_definitions
from granero.definitions.aggregation import Aggregation
from granero.feature_store import FeatureStore
from granero.streaming.job import _targets, as_streamed
from granero.streaming.micro_batch import MicroBatchWriter

pytestmark = [pytest.mark.spark, pytest.mark.redis]

NOW = datetime.now(UTC).replace(microsecond=0)
DRIVERS = 6


def define():
    driver = Entity(name="driver", join_keys={"driver_id": "int64"})
    source = FileSource(path="unused", format="delta", timestamp_field="ts")
    view = FeatureView(
        name="trips", entities=[driver], hop="5m", source=source, stream_source=source,
        features=[Field(name="fare", dtype="float64")],
        aggregations=[Aggregation(column="driver_id", function="count", window="1h"),
                      Aggregation(column="fare", function="sum", window="1h")],
    )
    return compile_definitions([("driver", driver), ("trips", view)])


def events(rng: random.Random, count: int) -> list[tuple]:
    return [(rng.randrange(DRIVERS), NOW - timedelta(seconds=rng.randrange(1, 5400)), float(rng.randrange(100)))
            for _ in range(count)]


def test_replayed_and_late_batches_count_each_event_once(spark, tmp_path, redis_url):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "feature_store.yaml").write_text(
        f"project: agg_{uuid.uuid4().hex[:8]}\nregistry: {{path: registry}}\n"
        f"offline_store: {{type: delta, path: offline}}\nonline_store: {{type: redis, url: '{redis_url}'}}\n")
    store = FeatureStore(root)
    store.registry.write_version(store.config.project, define())
    defs = store.registered()
    view = as_streamed(defs.feature_views["trips"])
    writer = MicroBatchWriter(view, defs, _targets(store, defs, view))
    writer.identity.started("query-1")
    rng = random.Random(14)
    batches = [events(rng, 40), events(rng, 40)]
    frames = [spark.createDataFrame(rows, "driver_id bigint, ts timestamp, fare double") for rows in batches]
    writer(frames[0], 0)
    writer(frames[0], 0)  # replayed after a kill: nothing twice
    writer(frames[1], 1)  # older events than some of batch 0: recomputed, not overwritten

    offline = store.offline_store.read("trips").count()
    assert offline == 80
    drivers = [{"driver_id": d} for d in range(DRIVERS)]
    served = store.get_online_features(drivers, ["trips:*"], now=NOW).to_dict()
    asked = pd.DataFrame([{**d, "event_timestamp": NOW} for d in drivers])
    training = store.get_historical_features_pandas(asked, ["trips:*"])
    assert any(served["trips__driver_id_count_1h"])  # the comparison is not of empty answers
    for name in ("driver_id_count_1h", "fare_sum_1h"):
        column = f"trips__{name}"
        assert served[column] == [None if pd.isna(v) else v for v in training[column]], name
    store.close()
