"""Online lookup of 12 aggregates beside a 12-feature plain view: 1 and 100 entities, over gRPC
and in process, printed side by side (issue 12's goal: the aggregates within 1.5x).

    .venv/bin/python -m bench.aggregations_lookup [--requests 1000] [--entities 10000]

Sets up everything itself in a temporary folder: a private redis-server and a repo with

- ``stats``: a plain view of 12 float64 features, one row per entity;
- ``trips``: an aggregate view of 12 aggregates (count, sum, mean, max of fare over 1h, 1d, 7d;
  hop 1m, the default for these windows), 40 events per entity over the last 8 days written by
  the sync's own writer (``AggregateWriter``): each entity holds one member per change point
  (~41: its newest tile, then every tail crossing still ahead); a lookup reads one member per
  entity (the last change point at or before the request's time), holding all 12 values.

The server runs in a process of its own (``granero serve``'s code); the client sends the entity
ids as a key column and asks for the COLUMNS layout (the generated stub, no client library). In
process: ``FeatureStore.get_online_features`` (entity rows in, OnlineResult out). Requests of
the two views alternate in rounds of 50, so a loaded machine slows both alike; each cell is the
median (p50) and p99 of ``--requests`` sequential requests after 100 warm-up ones; the entity ids of
every request are drawn before the clock starts.

Beside the latencies, the CPU time per request of every process that serves it (this one, the
gRPC server's for gRPC cells, redis-server), from nanosecond counters (``time.process_time``,
``/proc/<pid>/task/*/schedstat``): on a shared, loaded machine wall times stretch with the other
jobs, CPU times far less, so their ratio is the steadier estimate of a quiet machine's.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench.redis_server import private_redis

if TYPE_CHECKING:
    from collections.abc import Iterator

PLAIN = [f"stats:f{i:02d}" for i in range(12)]
AGGREGATES = [f"trips:fare_{f}_{w}" for w in ("1h", "1d", "7d") for f in ("count", "sum", "mean", "max")]
EVENTS_PER_ENTITY = 40
ROUND = 50


def make_repo(root: Path, redis_url: str) -> Path:
    root.mkdir()
    (root / "feature_store.yaml").write_text(
        f"project: bench\nonline_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n")
    (root / "defs.py").write_text(textwrap.dedent("""
        from granero import Entity, FeatureView, Field, FileSource
        from granero.definitions.aggregation import Aggregation
        driver = Entity(join_keys={"driver_id": "int64"})
        stats = FeatureView(entities=[driver], ttl="1d", source=FileSource(path="data/x", timestamp_field="ts"),
                            features=[Field(name=f"f{i:02d}", dtype="float64") for i in range(12)])
        trips = FeatureView(entities=[driver], source=FileSource(path="data/y", timestamp_field="ts"),
                            features=[Field(name="fare", dtype="float64")],
                            aggregations=[Aggregation(column="fare", function=f, window=w)
                                          for w in ("1h", "1d", "7d") for f in ("count", "sum", "mean", "max")])
    """))
    return root


def write_data(repo: Path, entities: int) -> None:
    import numpy as np
    import pyarrow as pa

    from granero.aggregation.spec import aggregation_spec
    from granero.feature_store import FeatureStore
    from granero.online.aggregate_sync import AggregateWriter
    from granero.online.encoding import to_micros
    from granero.online.sync import PartitionWriter

    stamp = pa.timestamp("us", tz="UTC")
    now = datetime.now(UTC)
    rng = np.random.default_rng(7)
    with FeatureStore(repo) as store:
        store.apply()
        defs, online = store.registered(), store.online_store
        stats = defs.feature_views["stats"]
        columns = {"driver_id": pa.array(range(entities), pa.int64()),
                   "event_timestamp": pa.array([now - timedelta(minutes=5)] * entities, stamp),
                   "created_timestamp": pa.nulls(entities, stamp)}
        columns |= {f.name: pa.array(rng.random(entities)) for f in stats.features}
        PartitionWriter(online.settings, "bench", "stats", ("int64",),
                        tuple((f.name, f.dtype) for f in stats.features), stats.ttl
                        ).write(online, pa.RecordBatch.from_pydict(columns))
        count = entities * EVENTS_PER_ENTITY
        ages = rng.integers(0, 8 * 86_400_000_000, count)
        events = pa.table({"driver_id": pa.array(np.repeat(np.arange(entities), EVENTS_PER_ENTITY), pa.int64()),
                           "event_timestamp": pa.array(to_micros(now) - ages, pa.int64()).cast(stamp),
                           "fare": pa.array(rng.gamma(2.0, 10.0, count))})
        trips = defs.feature_views["trips"]
        AggregateWriter(online.settings, "bench", "trips", aggregation_spec(defs, trips)).write(online, events)


def serve(repo: str) -> None:
    """The server process: prints its address once ready, runs until SIGTERM."""
    from granero.feature_store import FeatureStore
    from granero.serving.server import serve as run_server

    with FeatureStore(repo) as store:
        config = store.config.serving.model_copy(update={"port": 0})
        run_server(store, config, on_ready=lambda handle: print(handle.address, flush=True))


def grpc_caller(address: str, refs: list[str], size: int, entities: int):
    import grpc

    from granero.serving.v1 import serving_pb2 as pb
    from granero.serving.v1 import serving_pb2_grpc, value_pb2

    stub = serving_pb2_grpc.FeatureServingStub(grpc.insecure_channel(address))
    features, samples = pb.FeatureList(refs=refs), entity_samples(size, entities)

    def call() -> None:
        ids = value_pb2.Value(int64_list_val=value_pb2.Int64List(val=next(samples)))
        reply = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(
            features=features, entity_columns={"driver_id": ids}, layout=pb.COLUMNS), timeout=10)
        statuses = reply.views[0].statuses
        if len(reply.columns) != len(refs) or len(statuses) != size or set(statuses) != {pb.PRESENT}:
            raise SystemExit(f"unexpected reply (every entity must be PRESENT): {reply}")

    return call


def local_caller(store, refs: list[str], size: int, entities: int):
    samples = entity_samples(size, entities)

    def call() -> None:
        result = store.get_online_features([{"driver_id": d} for d in next(samples)], refs)
        if len(result.values) != len(refs) or len(result.values[0]) != size or any(result.statuses[0]):
            raise SystemExit("unexpected result (every entity must be PRESENT)")

    return call


def entity_samples(size: int, entities: int, distinct: int = 256) -> Iterator[list[int]]:
    """Endless random draws of ``size`` distinct entity ids, drawn before any clock starts
    (``random.sample`` of 100 ids costs ~0.3 ms, a third of a plain lookup)."""
    rng = random.Random(size)
    return itertools.cycle([rng.sample(range(entities), size) for _ in range(distinct)])


def race(plain, aggregate, requests: int, pids: list[int]) -> list[tuple[list[float], float, float]]:
    """Both callers, alternating rounds of ROUND requests after 100 warm-up calls each: per
    caller, its latencies (ms), its CPU ms per request in this process and ``pids``, and in
    redis-server alone (the last of ``pids``)."""
    for _ in range(100):
        plain(), aggregate()
    times: tuple[list[float], list[float]] = ([], [])
    cpu, redis = [0.0, 0.0], [0.0, 0.0]
    while len(times[1]) < requests:
        for k, call in enumerate((plain, aggregate)):
            before, in_redis = cpu_seconds(pids), task_seconds(pids[-1:])
            for _ in range(ROUND):
                started = time.perf_counter()
                call()
                times[k].append((time.perf_counter() - started) * 1000)
            cpu[k] += cpu_seconds(pids) - before
            redis[k] += task_seconds(pids[-1:]) - in_redis
    return [(times[k], cpu[k] * 1000 / len(times[k]), redis[k] * 1000 / len(times[k])) for k in (0, 1)]


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by this process and every thread of ``pids``."""
    return time.process_time() + task_seconds(pids)


def task_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by every thread of ``pids``."""
    total = 0.0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0]) / 1e9
    return total


def redis_pid(port: int) -> int:
    import redis

    with redis.Redis(port=port) as client:
        return int(client.info("server")["process_id"])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        return serve(options.serve)
    from granero.feature_store import FeatureStore

    with tempfile.TemporaryDirectory() as folder, private_redis(Path(folder) / "redis") as port:
        repo = make_repo(Path(folder) / "repo", f"redis://127.0.0.1:{port}/0")
        write_data(repo, options.entities)
        server = subprocess.Popen([sys.executable, "-m", "bench.aggregations_lookup", "--serve", str(repo)],
                                  stdout=subprocess.PIPE, text=True)
        rows = []
        try:
            address = server.stdout.readline().strip()
            pids = {"gRPC": [server.pid, redis_pid(port)], "in process": [redis_pid(port)]}
            with FeatureStore(repo) as store:
                for path, caller, target in (("gRPC", grpc_caller, address), ("in process", local_caller, store)):
                    for size in (1, 100):
                        plain, aggregate = race(caller(target, PLAIN, size, options.entities),
                                                caller(target, AGGREGATES, size, options.entities),
                                                options.requests, pids[path])
                        rows.append((path, size, plain, aggregate))
        finally:
            server.terminate()
            server.wait(30)
    print(f"online lookup, {options.entities:,} entities, {options.requests} requests per cell after 100 warm-up "
          f"(p50 / p99 ms, ratio of p50s; CPU ms per request of client, server and redis-server, ratio; "
          f"redis-server's part alone); "
          f"load {os.getloadavg()[0]:.1f} at the end")
    print("| path | entities | plain view, 12 features | aggregate view, 12 aggregates | ratio "
          "| CPU plain / aggregate | CPU ratio | of which redis-server |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path, size, (plain, plain_cpu, plain_redis), (aggregate, aggregate_cpu, aggregate_redis) in rows:
        ratio = quantile(aggregate, 0.5) / quantile(plain, 0.5)
        print(f"| {path} | {size} | {quantile(plain, 0.5):.3f} / {quantile(plain, 0.99):.3f} | "
              f"{quantile(aggregate, 0.5):.3f} / {quantile(aggregate, 0.99):.3f} | {ratio:.2f}x | "
              f"{plain_cpu:.3f} / {aggregate_cpu:.3f} | {aggregate_cpu / plain_cpu:.2f}x | "
              f"{plain_redis:.3f} / {aggregate_redis:.3f} |")


if __name__ == "__main__":
    main()
