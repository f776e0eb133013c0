"""Latency and throughput of ``GetOnlineFeatures`` over gRPC: 1 entity x 20 features.

    .venv/bin/python bench/grpc_latency.py [--requests 2000] [--clients 1,4,8] [--seconds 10]

Sets up everything itself in a temporary folder: a private redis-server, a repo with one view of
20 features (10 float64, 10 int64) and 10,000 entities written through the online store, and the
server in a process of its own (as ``granero serve`` runs it). Then:

Requests send the entity id as a key column and ask for the COLUMNS response layout.

- latency: one client, ``--requests`` sequential requests after 200 warm-up ones (p50/p90/p99);
- throughput: for each N in ``--clients``, N client processes (one channel each, sequential
  requests) until 4,000 requests or ``--seconds`` have passed, whichever comes first.

On a small machine the clients share the CPUs with the server: throughput is a floor.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ENTITIES = 10_000
FEATURES = [(f"f{i:02d}", "float64" if i < 10 else "int64") for i in range(20)]
REFS = [f"stats:{name}" for name, _ in FEATURES]
THROUGHPUT_REQUESTS = 4000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    import redis

    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.02)
    raise SystemExit("redis-server did not start")


def make_repo(root: Path, redis_url: str) -> Path:
    root.mkdir()
    (root / "feature_store.yaml").write_text(
        f"project: bench\nonline_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n")
    fields = ", ".join(f"Field(name={n!r}, dtype={d!r})" for n, d in FEATURES)
    (root / "defs.py").write_text(textwrap.dedent(f"""
        from granero import Entity, FeatureView, Field, FileSource
        driver = Entity(join_keys={{"driver_id": "int64"}})
        stats = FeatureView(entities=[driver], ttl="1d", features=[{fields}],
                            source=FileSource(path="data/x", timestamp_field="ts"))
    """))
    return root


def write_rows(repo: Path) -> None:
    import pyarrow as pa

    from granero.feature_store import FeatureStore
    from granero.online.sync import PartitionWriter

    with FeatureStore(repo) as store:
        store.apply()
        view = store.registered().feature_views["stats"]
        rng = random.Random(7)
        stamp = datetime.now(UTC) - timedelta(minutes=5)
        columns = {"driver_id": pa.array(range(1, ENTITIES + 1), pa.int64()),
                   "event_timestamp": pa.array([stamp] * ENTITIES, pa.timestamp("us", tz="UTC")),
                   "created_timestamp": pa.nulls(ENTITIES, pa.timestamp("us", tz="UTC"))}
        for name, dtype in FEATURES:
            values = [rng.random() if dtype == "float64" else rng.randrange(1000)
                      for _ in range(ENTITIES)]
            columns[name] = pa.array(values, pa.float64() if dtype == "float64" else pa.int64())
        writer = PartitionWriter(store.online_store.settings, "bench", "stats", ("int64",),
                                 tuple(FEATURES), view.ttl)
        writer.write(store.online_store, pa.RecordBatch.from_pydict(columns))


def serve(repo: str) -> None:
    """The server process: prints its address once ready, runs until SIGTERM."""
    from granero.feature_store import FeatureStore
    from granero.serving.server import serve as run_server

    with FeatureStore(repo) as store:
        config = store.config.serving.model_copy(update={"port": 0})
        run_server(store, config, on_ready=lambda handle: print(handle.address, flush=True))


def client_loop(address: str, count: int, seconds: float, seed: int,
                warmup: int) -> tuple[list[float], float, float]:
    """Sequential requests on one channel: latencies in ms, and when (monotonic clock, shared by
    the processes of one machine) the first measured request started and the last ended."""
    import grpc

    from granero.serving.v1 import serving_pb2 as pb
    from granero.serving.v1 import serving_pb2_grpc, value_pb2

    rng = random.Random(seed)
    with grpc.insecure_channel(address) as channel:
        stub = serving_pb2_grpc.FeatureServingStub(channel)
        features = pb.FeatureList(refs=REFS)

        def request() -> None:
            ids = value_pb2.Int64List(val=[rng.randint(1, ENTITIES)])
            reply = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(
                features=features, entity_columns={"driver_id": value_pb2.Value(
                    int64_list_val=ids)}, layout=pb.COLUMNS), timeout=10)
            if len(reply.columns) != len(REFS) or list(reply.views[0].statuses) != [pb.PRESENT]:
                raise SystemExit(f"unexpected reply: {reply}")

        for _ in range(warmup):
            request()
        latencies, started = [], time.monotonic()
        while len(latencies) < count and time.monotonic() < started + seconds:
            sent = time.perf_counter()
            request()
            latencies.append((time.perf_counter() - sent) * 1000)
    return latencies, started, time.monotonic()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(latencies: list[float]) -> dict:
    quantiles = {f"p{q}_ms": round(percentile(latencies, q), 3) for q in (50, 90, 99)}
    return {"requests": len(latencies), **quantiles,
            "mean_ms": round(statistics.fmean(latencies), 3)}


def throughput(address: str, clients: int, seconds: float) -> dict:
    per_client = THROUGHPUT_REQUESTS // clients
    args = [(address, per_client, seconds, seed, 20) for seed in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.starmap(client_loop, args)
    elapsed = max(r[2] for r in results) - min(r[1] for r in results)
    latencies = [v for r in results for v in r[0]]
    return {"clients": clients, "req_per_s": round(len(latencies) / elapsed), **summary(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        return serve(options.serve)
    with tempfile.TemporaryDirectory() as folder:
        redis, url = start_redis(Path(folder))
        server = None
        try:
            repo = make_repo(Path(folder) / "repo", url)
            write_rows(repo)
            server = subprocess.Popen([sys.executable, __file__, "--serve", str(repo)],
                                      stdout=subprocess.PIPE, text=True)
            address = server.stdout.readline().strip()
            latencies, _, _ = client_loop(address, options.requests, 120, seed=1, warmup=200)
            report = {
                "latency_1x20": summary(latencies),
                "throughput_1x20": [throughput(address, int(n), options.seconds)
                                    for n in options.clients.split(",")],
            }
            print(json.dumps(report, indent=1))
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            redis.terminate()
            redis.wait(10)


if __name__ == "__main__":
    main()
