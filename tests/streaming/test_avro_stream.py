"""``KafkaSource(format="avro")`` end to end with the real broker: Avro records produced to Kafka
are served online and land in the offline table; a record cut short is a dead letter and the
query goes on. One ``--available-now`` run over a dozen messages (the stream suite is slow).

The messages are encoded here by a small writer of Avro's binary encoding (the spec's zig-zag
varints, little-endian doubles, length-prefixed strings), not by Spark, so a decoding mistake
cannot hide behind the same mistake in an encoder.
"""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from granero.feature_store import FeatureStore
from tests.conftest import scaled
from tests.streaming.broker import Broker, create_topic, produce
from tests.streaming.conftest import write_store_yaml
from tests.streaming.test_kafka_stream import dead_letters, offline_rows, run_available_now

pytestmark = [pytest.mark.timeout(900), pytest.mark.spark, pytest.mark.redis]

SCHEMA = {"type": "record", "name": "DriverStats", "fields": [
    {"name": "driver_id", "type": "long"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "rate", "type": "double"},
    {"name": "trips", "type": "int"},
    {"name": "note", "type": ["null", "string"]},
]}
VIEWS = '''
from granero import Entity, FeatureView, Field, FileSource, KafkaSource

driver = Entity(join_keys={{"driver_id": "int64"}})
driver_stats = FeatureView(
    entities=[driver],
    source=FileSource(path="data/driver_stats", timestamp_field="ts"),
    stream_source=KafkaSource(bootstrap_servers="{servers}", topic="{topic}", format="avro",
                              schema={schema!r}, timestamp_field="ts",
                              field_mapping={{"rate": "conv_rate"}}),
    ttl="1d",
    features=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int32"),
              Field(name="note", dtype="string")],
)
'''
NOW = datetime.now(UTC).replace(microsecond=0)


def zigzag(value: int) -> bytes:
    """An Avro int or long: zig-zag, then a little-endian base-128 varint."""
    n, out = (value << 1) ^ (value >> 63), bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes([*out, n])


def avro_record(event: dict) -> bytes:
    micros = (event["ts"] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    note = event["note"]
    tail = zigzag(0) if note is None else zigzag(1) + zigzag(len(note.encode())) + note.encode()
    return (zigzag(event["driver_id"]) + zigzag(micros) + struct.pack("<d", event["rate"])
            + zigzag(event["trips"]) + tail)


EVENTS = [  # driver 2's later event arrives first; driver 3 has a null note; big and negative ints
    {"driver_id": 1, "ts": NOW - timedelta(minutes=5), "rate": 0.25, "trips": 3, "note": "first"},
    {"driver_id": 2, "ts": NOW - timedelta(minutes=1), "rate": 0.75, "trips": -7, "note": "newer"},
    {"driver_id": 2, "ts": NOW - timedelta(minutes=9), "rate": 0.5, "trips": 2**31 - 1, "note": "older"},
    {"driver_id": 2**40, "ts": NOW - timedelta(minutes=2), "rate": -1.5, "trips": 0, "note": None},
    {"driver_id": 1, "ts": NOW - timedelta(minutes=3), "rate": 1e-300, "trips": 9, "note": "ünïcode"},
]
CUT_SHORT = [avro_record(EVENTS[0])[:3], b""]
"""A record missing its last fields, and an empty value: not Avro records of the schema."""


@pytest.fixture
def avro_repo(tmp_path: Path, kafka: Broker, redis_url: str) -> Path:
    topic, project = f"avro_{uuid.uuid4().hex[:8]}", f"avro_{uuid.uuid4().hex[:8]}"
    create_topic(kafka.bootstrap_servers, topic, partitions=1, timeout=scaled(30))
    repo = tmp_path / "repo"
    repo.mkdir()
    write_store_yaml(repo, project, redis_url)
    (repo / "views.py").write_text(VIEWS.format(servers=kafka.bootstrap_servers, topic=topic,
                                                schema=json.dumps(SCHEMA)))
    with FeatureStore(repo) as store:
        store.apply()
    messages = [avro_record(e) for e in EVENTS[:2]] + CUT_SHORT + [avro_record(e) for e in EVENTS[2:]]
    produce(kafka.bootstrap_servers, topic, messages, scaled(30))
    return repo


def test_avro_records_are_served_and_stored_and_a_cut_short_one_is_a_dead_letter(avro_repo, tmp_path):
    totals = run_available_now(avro_repo, tmp_path / "stream.log")
    assert totals["driver_stats"]["rows"] == len(EVENTS)
    assert totals["driver_stats"]["dead_letters"] == len(CUT_SHORT)
    with FeatureStore(avro_repo) as store:
        table = offline_rows(store).sort_by("note")
        assert table.num_rows == len(EVENTS)
        stored = {(r["driver_id"], r["event_timestamp"], r["conv_rate"], r["trips"], r["note"])
                  for r in table.select(["driver_id", "event_timestamp", "conv_rate", "trips", "note"]).to_pylist()}
        assert stored == {(e["driver_id"], e["ts"], e["rate"], e["trips"], e["note"]) for e in EVENTS}
        drivers = [1, 2, 2**40]
        features = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:note"]
        served = store.get_online_features([{"driver_id": d} for d in drivers], features).to_dict()
        latest = [EVENTS[4], EVENTS[1], EVENTS[3]]  # per driver, the latest event time wins
        assert served == {"driver_stats__conv_rate": [e["rate"] for e in latest],
                          "driver_stats__trips": [e["trips"] for e in latest],
                          "driver_stats__note": [e["note"] for e in latest]}
        letters = dead_letters(store)
        assert sorted(letters["value"].to_pylist()) == sorted(CUT_SHORT)
        errors = dict(zip(letters["value"].to_pylist(), letters["error"].to_pylist(), strict=True))
        assert "not an Avro record" in errors[CUT_SHORT[0]], errors
        assert errors[CUT_SHORT[1]], errors
