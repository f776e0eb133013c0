"""Materialization of tiles into Redis (the online side of an aggregate view) beside plain sync of
the same source, in process, rows of source per second.

    .venv/bin/python -m bench.aggregations_sync [--scale small|default|large] [--runs 3]

Workload (issue 12): events (entity_id, event_timestamp, created, fare) spread over 30 days, 100
per key, ``default`` 1M events / 10k keys; an aggregate view of 3 windows (1h, 1d, 7d) x 4
functions (count, sum, mean, max of fare), hop 1m (the default for these windows).

Rows, each the median of ``--runs`` on a private redis-server (data generation outside the clock):

- aggregate, compute: ``AggregateWriter.entities`` -- suffix values of every tile within the span
  of each key's newest event (7d + 1m), encoded as members;
- aggregate, end to end: ``AggregateWriter.write`` -- the same plus the Lua rewrites in Redis;
- plain, end to end: the latest row per key (numpy) written by ``online.sync.PartitionWriter``,
  what ``granero sync`` does in process for a plain view of the same source.

Rows/s divide the *source* events by the time, so the rows compare work on the same input. What
``granero materialize`` adds before either (Spark writing the offline table) is the same for both
kinds of view and measured by bench/run.py's materialization rows.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.redis_server import private_redis
from granero.aggregation.engine import Aggregate, AggregationSpec
from granero.online.aggregate_sync import AggregateWriter
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import PartitionWriter

SCALES = {"small": 100_000, "default": 1_000_000, "large": 4_000_000}
EVENTS_PER_KEY = 100
DAY = 86_400_000_000
END = (int(time.time()) // 3600 + 1) * 3600 * 1_000_000
WINDOWS = {"1h": DAY // 24, "1d": DAY, "7d": 7 * DAY}
FUNCTIONS = ("count", "sum", "mean", "max")


def source(events: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = END - rng.integers(1, 30 * DAY, events)
    stamp = pa.timestamp("us", tz="UTC")
    return pa.table({
        "entity_id": pa.array(rng.integers(0, events // EVENTS_PER_KEY, events), pa.int64()),
        "event_timestamp": pa.array(ts, pa.int64()).cast(stamp),
        "created_timestamp": pa.array(ts + 1_000_000, pa.int64()).cast(stamp),
        "fare": pa.array(rng.gamma(2.0, 10.0, events), pa.float64()),
    })


def spec() -> AggregationSpec:
    aggregates = [Aggregate(f"fare_{f}_{w}", "fare", f, micros, "float64")
                  for w, micros in WINDOWS.items() for f in FUNCTIONS]
    return AggregationSpec({"entity_id": "int64"}, 60_000_000, aggregates)


def latest_rows(events: pa.Table) -> pa.Table:
    key = events["entity_id"].to_numpy()
    order = np.lexsort((events["created_timestamp"].cast(pa.int64()).to_numpy(),
                        events["event_timestamp"].cast(pa.int64()).to_numpy(), key))
    last = np.r_[key[order][1:] != key[order][:-1], True]
    return events.take(pa.array(order[last]))


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(events: pa.Table, store: RedisStore, client) -> dict[str, float]:
    writer = AggregateWriter(store.settings, store.project, "tiles", spec())
    plain = PartitionWriter(store.settings, store.project, "plain", ("int64",), (("fare", "float64"),),
                            timedelta(days=8))
    client.flushdb()
    compute, entities = timed(lambda: writer.entities(events))
    client.flushdb()
    aggregate, stored = timed(lambda: writer.write(store, events))
    plain_seconds, _ = timed(lambda: sum(plain.write(store, b) for b in latest_rows(events).to_batches()))
    members = sum(len(e.members) for e in entities)
    return {"compute": compute, "aggregate": aggregate, "plain": plain_seconds,
            "entities": stored, "members": members}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALES, default="default")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    events = source(SCALES[options.scale])
    import redis

    with tempfile.TemporaryDirectory() as folder, private_redis(Path(folder)) as port:
        url = f"redis://127.0.0.1:{port}/0"
        store = RedisStore(RedisSettings(url, expire_keys=False), "bench")
        runs = [measure(events, store, redis.Redis.from_url(url)) for _ in range(options.runs)]
        store.close()
    rows = events.num_rows
    print(f"tile materialization, {rows:,} events, {rows // EVENTS_PER_KEY:,} keys, "
          f"{runs[0]['members']:,} members of {runs[0]['entities']:,} entities, median of {len(runs)}")
    print("| step | seconds | source rows/s |\n|---|---:|---:|")
    for label, name in (("aggregate view: suffix values + members (compute)", "compute"),
                        ("aggregate view: end to end into Redis", "aggregate"),
                        ("plain view of the same source: end to end into Redis", "plain")):
        seconds = statistics.median(run[name] for run in runs)
        print(f"| {label} | {seconds:.2f} | {rows / seconds:,.0f} |")


if __name__ == "__main__":
    main()
