"""The online query's micro-batches (its plan and ``foreachBatch``, called in process on static
batches of Kafka records): one Spark job gives the served rows, the landed rows and the dead
letters; full ties keep the row the batch pipeline keeps; two identical malformed messages are
two dead letters; a value whose cast would change, or an event time before 1970, is a dead
letter, not a failed batch or a row lost in silence; a replay
lands nothing twice and rewrites the same dead letters; the landed rows reach the offline table
once (``offline.landed_append``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from granero import Entity, FeatureView, Field, FileSource, KafkaSource
from granero.definitions import compile_definitions
from granero.feature_store import FeatureStore
from granero.offline.landed_append import LandedAppender
from granero.offline.landing import read_landed_arrow
from granero.streaming.job import _targets, as_streamed
from granero.streaming.micro_batch import OnlineBatchWriter

pytestmark = [pytest.mark.spark, pytest.mark.redis]

T = datetime(2026, 1, 7, 12, tzinfo=UTC)


def define():
    driver = Entity(name="driver", join_keys={"driver_id": "int64"})
    stream = KafkaSource(bootstrap_servers="unused:9092", topic="unused", timestamp_field="ts",
                         schema="driver_id BIGINT, ts TIMESTAMP, rate DOUBLE, trips BIGINT",
                         field_mapping={"rate": "conv_rate"})
    view = FeatureView(name="stats", entities=[driver], ttl="3650d", stream_source=stream,
                       source=FileSource(path="unused", timestamp_field="ts"),
                       features=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int32")])
    return compile_definitions([("driver", driver), ("stats", view)])


def message(driver: int, at: datetime, rate: float, trips: int) -> bytes:
    return json.dumps({"driver_id": driver, "ts": at.isoformat(), "rate": rate, "trips": trips}).encode()


MESSAGES = [
    message(1, T, 0.5, 1),
    message(1, T, 0.7, 1),  # a full tie with the first: the greater conv_rate is kept
    message(2, T, 0.1, 3_000_000_000),  # does not fit int32: a dead letter
    b"not json",
    b"not json",  # the same bytes again, at another offset: a second dead letter
    message(3, T + timedelta(minutes=1), 0.2, 5),
    message(4, datetime(1969, 12, 31, 23, tzinfo=UTC), 0.9, 1),  # before the epoch: a dead letter
]


@pytest.fixture
def store(tmp_path: Path, redis_url: str) -> FeatureStore:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "feature_store.yaml").write_text(
        f"project: online_batches_{uuid.uuid4().hex[:8]}\nregistry: {{path: registry}}\n"
        f"offline_store: {{type: delta, path: offline}}\nonline_store: {{type: redis, url: '{redis_url}'}}\n"
        f"streaming: {{dead_letter_location: {root / 'dead'}}}\n")
    store = FeatureStore(root)
    store.registry.write_version(store.config.project, define())
    yield store
    store.close()


def test_one_batch_serves_lands_and_sets_aside_and_a_replay_adds_nothing(spark, store: FeatureStore) -> None:
    defs = store.registered()
    view = as_streamed(defs.feature_views["stats"])
    targets = _targets(store, defs, view)
    writer = OnlineBatchWriter(view, defs, targets)
    writer.identity.started("query-1")
    appender = LandedAppender(view, defs, store.offline_store, targets.landing)
    appender.start()
    records = spark.createDataFrame([(value, "topic", 0, offset) for offset, value in enumerate(MESSAGES)],
                                    "value binary, topic string, partition int, offset bigint")
    batch = writer.rows(records)
    writer(batch, 0)
    writer(batch, 0)  # replayed after a kill

    served = store.get_online_features([{"driver_id": d} for d in (1, 2, 3, 4)], ["stats:conv_rate", "stats:trips"],
                                       now=T + timedelta(hours=1)).to_dict()
    assert served == {"stats__conv_rate": [0.7, None, 0.2, None], "stats__trips": [1, None, 5, None]}
    landed = read_landed_arrow(targets.landing, "stats", None)
    assert sorted(zip(landed["driver_id"].to_pylist(), landed["conv_rate"].to_pylist(), strict=True)) == [
        (1, 0.7), (3, 0.2)]
    letters = pq.read_table(Path(targets.dead_letters) / "stats")
    assert sorted(letters["offset"].to_pylist()) == [2, 3, 4, 6]
    assert sorted(letters["value"].to_pylist()) == sorted([MESSAGES[2], MESSAGES[3], MESSAGES[4], MESSAGES[6]])
    errors = dict(zip(letters["offset"].to_pylist(), letters["error"].to_pylist(), strict=True))
    assert "int32 cannot hold exactly" in errors[2]
    assert "'ts'" in errors[6] and "outside what a stream takes (from 1970-01-01" in errors[6]
    assert writer.totals == {"batches": 2, "rows": 4, "dead_letters": 8}  # a replay counts again

    assert appender.append() == 2
    table = store.offline_store.read("stats").select("driver_id", "conv_rate", "trips").collect()
    assert sorted(tuple(row) for row in table) == [(1, 0.7, 1), (3, 0.2, 5)]


def test_an_event_time_is_checked_for_the_stream_window_only_once_it_casts(spark) -> None:
    """A text event time: one that does not parse is a cast problem (the query never fails on
    it), one before 1970 is outside what a stream takes, one in range passes."""
    from granero.streaming.micro_batch import row_problem

    driver = Entity(name="driver", join_keys={"driver_id": "int64"})
    stream = KafkaSource(bootstrap_servers="unused:9092", topic="unused", timestamp_field="ts",
                         schema="driver_id BIGINT, ts STRING, rate DOUBLE")
    view = FeatureView(name="texts", entities=[driver], ttl="1d", stream_source=stream,
                       source=FileSource(path="unused", timestamp_field="ts"),
                       features=[Field(name="rate", dtype="float64")])
    defs = compile_definitions([("driver", driver), ("texts", view)])
    streamed = as_streamed(defs.feature_views["texts"])
    rows = spark.createDataFrame([(1, "2026-01-07 12:00:00", 0.5), (2, "not a time", 0.5),
                                  (3, "1969-12-31 23:00:00", 0.5)], "driver_id bigint, ts string, rate double")
    problems = [row[0] for row in rows.select(row_problem(rows, defs, streamed)).collect()]
    assert problems[0] is None
    assert "cannot hold exactly" in problems[1]
    assert "outside what a stream takes" in problems[2]
