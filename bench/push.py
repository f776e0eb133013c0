"""Push: rows/s and latency per call for 1, 100 and 1,000-row pushes, Granero beside Feast 0.67.

    .venv/bin/python -m bench.push [--entities 1000] [--count 200] [--seconds 30]

One run, printed side by side (and written to bench/out/push-<UTC>.json): sequential pushes of
the same rows (driver_id; conv_rate, acc_rate float64; trips int64) into a view, each call
validated, landed offline and written online:

- Granero in process (``FeatureStore.push``) and over gRPC (``Client.push`` to a ``granero
  serve`` process: the client's encoding is in the time), both ``online_and_offline``: one
  Parquet file landed (fsynced) and a write-if-newer pipeline to Redis per call. Each call's rows
  carry event times one microsecond later than the previous call's (and the gRPC run's differ
  from the in-process run's), so every call lands a new file and overwrites online (a repeat
  would be an idempotent no-op, and much cheaper: no fsync).
- Feast 0.67 ``store.push`` to a ``PushSource``, ``PushMode.ONLINE_AND_OFFLINE`` (Redis, and an
  append to its file offline store), in its own virtualenv (``bash bench/run.sh`` makes it).

Every system writes to its own database of one private redis-server. Per batch size: calls made,
rows/s (rows pushed / time spent in the calls), p50 and p99 latency per call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import on_demand
from bench.on_demand import serve
from bench.processes import BENCH, FEAST_BIN, ROOT
from bench.redis_server import free_port, private_redis
from bench.stats import percentile, spread

BATCHES = (1, 100, 1000)
DEFINITIONS = '''
from granero import Entity, FeatureView, Field, FileSource

driver = Entity(join_keys={"driver_id": "int64"})
driver_stats = FeatureView(
    entities=[driver], ttl="30d",
    source=FileSource(path="SOURCE", timestamp_field="event_timestamp"),
    features=[Field(name="conv_rate", dtype="float64"), Field(name="acc_rate", dtype="float64"),
              Field(name="trips", dtype="int64")],
)
'''


def write_source(path: Path, entities: int, end: datetime) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    pq.write_table(pa.table({
        "driver_id": pa.array(np.arange(1, entities + 1), pa.int64()),
        "event_timestamp": pa.array([end - timedelta(hours=1)] * entities, pa.timestamp("us", tz="UTC")),
        "conv_rate": rng.random(entities), "acc_rate": rng.random(entities),
        "trips": pa.array(rng.integers(0, 500, entities), pa.int64()),
    }), path)


def granero_repo(root: Path, source: Path, redis_port: int, serving_port: int) -> Path:
    return on_demand.granero_repo(root, source, redis_port, serving_port,
                                  project="push_bench", definitions=DEFINITIONS)


def timed_pushes(push: Callable[[Any], Any], source: Path, batch: int, count: int,
                 seconds: float, shift: int = 0) -> list[float]:
    """Latencies (ms) of sequential pushes of ``batch`` rows, each call's events 1 us later
    (from ``shift`` us on: each path gets rows of its own, or its pushes would be repeats)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    chunks = [table.slice(i, batch) for i in range(0, table.num_rows - batch + 1, batch)][:64]
    latencies, deadline = [], time.monotonic() + seconds
    for call in range(count + 5):
        chunk = chunks[call % len(chunks)]
        later = pc.add(chunk["event_timestamp"], pa.scalar(shift + call, pa.duration("us")))
        chunk = chunk.set_column(1, "event_timestamp", later)
        began = time.perf_counter()
        push(chunk)
        if call >= 5:  # the first calls warm up
            latencies.append((time.perf_counter() - began) * 1000)
        if time.monotonic() > deadline:
            break
    return latencies


def feast_pushes(source: Path, out: Path, redis_port: int, count: int, seconds: float) -> dict:
    if not (FEAST_BIN / "python").exists():
        return {"skipped": "bench/.venv-feast is missing (bash bench/run.sh creates it)"}
    args = {"repo": str(out / "feast_repo"), "source": str(source), "redis_port": redis_port,
            "db": 1, "batches": list(BATCHES), "count": count, "seconds": seconds, "warmup": 5}
    done = subprocess.run([str(FEAST_BIN / "python"), "-m", "bench.push_feast", "pushes"],
                          input=json.dumps(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=3600)
    if done.returncode != 0:
        return {"failed": done.stderr[-2000:]}
    return json.loads(done.stdout)


def report(results: dict) -> str:
    lines = ["| system, path | rows per push | pushes | rows/s | p50 per push (ms) | p99 per push (ms) |",
             "|---|---:|---:|---:|---:|---:|"]
    feast = results["feast"].get("measured", {})
    systems = (("Granero, in process", results["granero_sdk"]),
               ("Granero, gRPC (Client.push)", results["granero_grpc"]),
               ("Feast 0.67, in process (store.push)", feast))
    for label, measured in systems:
        for batch in BATCHES:
            latencies = measured.get(str(batch), [])
            if not latencies:
                lines.append(f"| {label} | {batch} | 0 | n/a | n/a | n/a |")
                continue
            rate = _rows_per_s(batch, latencies)["median"]
            lines.append(f"| {label} | {batch:,} | {len(latencies)} | {rate:,.0f} | "
                         f"{percentile(sorted(latencies), 50):.2f} | {percentile(sorted(latencies), 99):.2f} |")
    if "skipped" in results["feast"] or "failed" in results["feast"]:
        lines.append(f"\nFeast: {results['feast']}")
    return "\n".join(lines)


def run(entities: int, count: int, seconds: float) -> dict:
    from granero.feature_store import FeatureStore
    from granero.serving.client import Client

    end = datetime.now(UTC).replace(microsecond=0)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    results: dict[str, Any] = {"entities": entities, "count": count, "seconds": seconds}
    with tempfile.TemporaryDirectory(dir=out) as scratch, private_redis(Path(scratch) / "redis") as port:
        source = Path(scratch) / "driver_stats.parquet"
        write_source(source, entities, end)
        serving_port = free_port()
        repo = granero_repo(Path(scratch) / "granero_repo", source, port, serving_port)
        with FeatureStore(repo) as store:
            store.apply()
            results["granero_sdk"] = {str(b): timed_pushes(
                lambda rows: store.push("driver_stats", rows), source, b, count, seconds) for b in BATCHES}
        server = serve(repo, serving_port)
        try:
            with Client(f"127.0.0.1:{serving_port}", timeout=60) as client:
                results["granero_grpc"] = {str(b): timed_pushes(
                    lambda rows: client.push("driver_stats", rows), source, b, count, seconds,
                    shift=10**6) for b in BATCHES}
        finally:
            server.terminate()
            server.wait(timeout=60)
        results["feast"] = feast_pushes(source, Path(scratch), port, count, seconds)
    return results


def phase(bench: Any) -> None:
    """``bench/run.py``'s ``push`` phase: rows/s and p99 per call beside Feast's, as table rows."""
    from bench.report import Row

    results = run(1000, max(20, bench.args.requests // 25), bench.args.seconds)
    feast = results["feast"].get("measured", {})
    for batch in BATCHES:
        for path, measured in (("in process", results["granero_sdk"]), ("gRPC", results["granero_grpc"])):
            ours, theirs = measured.get(str(batch)), feast.get(str(batch))
            label = f"push {batch:,} rows per call, Granero {path} (Feast: store.push)"
            bench.results.add(Row(label, "rows/s", "higher", granero=_rows_per_s(batch, ours),
                                  feast=_rows_per_s(batch, theirs)))
            bench.results.add(Row(f"{label} p99", "ms", "lower", granero=_p99(ours), feast=_p99(theirs)))
    bench.results.details["push"] = results
    bench.results.notes.append("Push: sequential pushes of the same rows, validated, landed offline "
                               "and written online (Feast: PushMode.ONLINE_AND_OFFLINE); bench/push.py.")


def _rows_per_s(batch: int, latencies: list[float] | None) -> dict | None:
    return spread([batch * len(latencies) / (sum(latencies) / 1000)]) if latencies else None


def _p99(latencies: list[float] | None) -> dict | None:
    return spread([percentile(sorted(latencies), 99)]) if latencies else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1000, help="rows of the source (>= 1000)")
    parser.add_argument("--count", type=int, default=200, help="pushes per batch size and system")
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget per batch size")
    args = parser.parse_args(argv)
    results = run(max(args.entities, max(BATCHES)), args.count, args.seconds)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (BENCH / "out" / f"push-{stamp}.json").write_text(json.dumps(results, default=str))
    print(report(results))


if __name__ == "__main__":
    main()
