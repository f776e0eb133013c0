"""One real Kafka broker (KRaft) for the streaming tests, and a feature repo streaming from it.

The broker starts once per test session on loopback ports (granero.streaming.local_broker), is
waited for by polling, and is stopped at the end. Each test gets its own topic and project, so
tests share the broker and the session's redis-server without seeing each other's data.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from granero.streaming.local_broker import Broker, create_topic, start_broker
from tests.conftest import scaled


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(tmp_path_factory.mktemp("kafka"), timeout=scaled(120))
    yield broker
    broker.stop(timeout=scaled(30))


@dataclass
class StreamRepo:
    path: Path
    topic: str
    project: str
    trip_source: Path
    """A Delta table ``trip_totals`` streams from (driver_id, ts, total)."""


def append_trips(table: Path, rows: list[tuple[int, datetime, int]]) -> None:
    """Rows appended to the Delta source table, in process (delta-rs: no Spark)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    data = pa.table({"driver_id": pa.array([r[0] for r in rows], pa.int64()),
                     "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
                     "total": pa.array([r[2] for r in rows], pa.int64())})
    write_deltalake(str(table), data, mode="append")


VIEWS = '''
from granero import Entity, FeatureView, Field, FileSource, KafkaSource

driver = Entity(join_keys={{"driver_id": "int64"}})
driver_stats = FeatureView(
    entities=[driver],
    source=FileSource(path="data/driver_stats", timestamp_field="ts"),
    stream_source=KafkaSource(
        bootstrap_servers="{servers}",
        topic="{topic}",
        schema="driver_id BIGINT, ts TIMESTAMP, rate DOUBLE, trips BIGINT, note STRING",
        timestamp_field="ts",
        field_mapping={{"rate": "conv_rate"}},
    ),
    ttl="1d",
    features=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int32"),
              Field(name="note", dtype="string")],
)
trip_totals = FeatureView(  # a Delta table as a stream source
    entities=[driver],
    source=FileSource(path="data/trip_source", format="delta", timestamp_field="ts"),
    stream_source=FileSource(path="{trip_source}", format="delta", timestamp_field="ts"),
    ttl="1d",
    features=[Field(name="total", dtype="int64")],
)
'''


def write_store_yaml(repo: Path, project: str, redis_url: str, streaming: str = "{}") -> None:
    """A stream test repo's ``feature_store.yaml``: Delta offline, the test Redis, a small local
    Spark; ``streaming``: the ``streaming:`` block (YAML flow mapping)."""
    (repo / "feature_store.yaml").write_text(textwrap.dedent(f"""\
        project: {project}
        offline_store: {{type: delta, path: data/offline}}
        online_store: {{type: redis, url: "{redis_url}"}}
        spark:
          master: local[2]
          conf: {{spark.sql.shuffle.partitions: "2", spark.default.parallelism: "2",
                  spark.databricks.delta.snapshotPartitions: "2", spark.ui.enabled: "false"}}
        streaming: {streaming}
        """))


@pytest.fixture
def stream_repo(tmp_path: Path, kafka: Broker, redis_url: str) -> StreamRepo:
    """A repo whose view ``driver_stats`` streams JSON from a fresh 2-partition topic, and
    ``trip_totals`` a Delta table (one row in it already), applied."""
    from granero.feature_store import FeatureStore

    topic, project = f"drivers_{uuid.uuid4().hex[:8]}", f"stream_{uuid.uuid4().hex[:8]}"
    create_topic(kafka.bootstrap_servers, topic, partitions=2, timeout=scaled(30))
    repo = tmp_path / "repo"
    repo.mkdir()
    write_store_yaml(repo, project, redis_url,
                     "{trigger_interval: 200 milliseconds, offline_trigger_interval: 1 second}")
    trip_source = repo / "data" / "trip_source"
    append_trips(trip_source, [(1, datetime.now(UTC) - timedelta(hours=1), 10)])
    (repo / "views.py").write_text(VIEWS.format(servers=kafka.bootstrap_servers, topic=topic,
                                                trip_source=trip_source))
    with FeatureStore(repo) as store:
        store.apply()
    return StreamRepo(repo, topic, project, trip_source)
