"""Demo of streaming: JSON events produced to a local Kafka broker are served online and stored
offline by the view's stream, and a malformed message becomes a dead letter.

    python feature_repo/scripts/stream_demo.py [--out feature_repo/data/stream_demo]
                                               [--bootstrap-servers HOST:PORT]

One process: a small repo under ``--out`` (a driver entity, a ``driver_stream`` view whose
stream source is a Kafka topic), the embedded Redis and Delta offline tables. A single-node
broker (``granero.streaming.local_broker``, the Kafka jars ``make setup`` fetched) is started
unless ``--bootstrap-servers`` names one, and stopped on the way out, whatever happens. Twenty
events for four drivers are produced out of event-time order with one malformed message, the
stream runs once over what the topic holds (``granero stream --available-now``), and the script
prints driver 1001's served value (its latest event by event time, not the last produced), the
offline row count and the dead letter.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime.now(UTC).replace(microsecond=0)
DRIVERS = (1001, 1002, 1003, 1004)
MALFORMED = b'{"driver_id": 1001, "ts": "not a time", "speed": 1.0}'
DEFINITIONS = '''from granero import Entity, FeatureView, Field, FileSource, KafkaSource

driver = Entity(join_keys={{"driver_id": "int64"}})
driver_stream = FeatureView(
    entities=[driver], ttl="1d", features=[Field(name="speed", dtype="float64")],
    source=FileSource(path="batch", timestamp_field="ts"),
    stream_source=KafkaSource(bootstrap_servers="{servers}", topic="{topic}",
                              schema="driver_id BIGINT, ts TIMESTAMP, speed DOUBLE", timestamp_field="ts"),
)
'''


def write_repo(out: Path, servers: str, topic: str) -> None:
    shutil.rmtree(out / "repo", ignore_errors=True)
    (out / "repo").mkdir(parents=True)
    (out / "repo" / "feature_store.yaml").write_text(
        "project: stream_demo\nregistry: {path: registry}\noffline_store: {type: delta, path: offline}\n"
        "online_store: {type: embedded, data_dir: online}\n"
        "spark: {master: 'local[2]', conf: {spark.sql.shuffle.partitions: '2', spark.ui.enabled: 'false'}}\n"
        "streaming: {checkpoint_location: checkpoints, dead_letter_location: dead_letters}\n"
    )
    (out / "repo" / "drivers.py").write_text(DEFINITIONS.format(servers=servers, topic=topic))


def events(count: int = 20) -> list[dict]:
    """``count`` events, distinct event times in the last hour, shuffled (seeded)."""
    rng = random.Random(14)
    rows = [{"driver_id": DRIVERS[i % len(DRIVERS)], "ts": (NOW - timedelta(minutes=60 - i)).isoformat(),
             "speed": round(rng.uniform(20, 90), 1)} for i in range(count)]
    rng.shuffle(rows)
    return rows


@contextmanager
def local_broker(out: Path, servers: str | None) -> Iterator[str]:
    """The broker named by ``servers``, or a local one stopped on exit (errors and Ctrl-C too)."""
    if servers:
        yield servers
        return
    from granero.streaming.local_broker import start_broker

    shutil.rmtree(out / "kafka", ignore_errors=True)
    (out / "kafka").mkdir(parents=True)
    broker = start_broker(out / "kafka", timeout=180)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop(timeout=30)
        print("broker stopped")


def stream_once(repo: Path) -> dict:
    """Apply, run the stream over what the topic holds, and read back what it wrote."""
    from granero.feature_store import FeatureStore
    from granero.streaming.job import run_streams

    with FeatureStore(repo) as store:
        store.apply()
        try:
            totals = run_streams(store, None, available_now=True)["driver_stream"]
            served = store.get_online_features([{"driver_id": 1001}], ["driver_stream:speed"]).to_dict()
            return {"totals": totals, "served": served["driver_stream__speed"][0],
                    "offline_rows": offline_rows(store), "dead_letter": dead_letter(store)}
        finally:
            stop_spark()


def offline_rows(store) -> int:
    from deltalake import DeltaTable

    return DeltaTable(f"{store.config.offline_store.path}/driver_stream").to_pyarrow_table().num_rows


def dead_letter(store) -> dict | None:
    import pyarrow.parquet as pq

    folder = Path(store.config.streaming.dead_letter_location) / "driver_stream"
    if not folder.is_dir():
        return None
    letters = pq.read_table(folder, columns=["value", "error"]).to_pylist()
    return {"count": len(letters), "value": letters[0]["value"].decode(), "error": letters[0]["error"]}


def stop_spark() -> None:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def report(result: dict, produced: list[dict]) -> None:
    latest = max((e for e in produced if e["driver_id"] == 1001), key=lambda e: e["ts"])
    last_sent = [e for e in produced if e["driver_id"] == 1001][-1]
    print(f"stream: {result['totals']['rows']} rows in {result['totals']['batches']} batch(es)")
    print(f"served: driver 1001 speed {result['served']} (its latest event, at {latest['ts']}; "
          f"the last one produced said {last_sent['speed']})")
    print(f"offline: {result['offline_rows']} rows in the Delta table")
    letter = result["dead_letter"]
    print(f"dead letters: {letter['count']}: {letter['value']!r} ({letter['error']})" if letter
          else "dead letters: none")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("feature_repo/data/stream_demo"))
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    from granero.streaming.local_broker import create_topic, produce

    produced = events()
    with local_broker(out, args.bootstrap_servers) as servers:
        topic = f"driver_events_{uuid.uuid4().hex[:8]}"
        create_topic(servers, topic, partitions=2, timeout=60)
        produce(servers, topic, [json.dumps(e).encode() for e in produced] + [MALFORMED], timeout=60)
        print(f"produced {len(produced)} events for drivers {list(DRIVERS)} and 1 malformed message to {topic}")
        write_repo(out, servers, topic)
        result = stream_once(out / "repo")
    report(result, produced)
    return result


if __name__ == "__main__":
    main()
