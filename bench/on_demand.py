"""On-demand features: per-request overhead and training throughput, Granero beside Feast 0.67.

    .venv/bin/python -m bench.on_demand [--entities 1000] [--count 2000] [--train-rows 1000000]

One run, printed side by side (and written to bench/out/on_demand-<UTC>.json):

- **Per-request overhead.** An on-demand view doing a few arithmetic operations on two inputs
  (the feature ``conv_rate`` and the request value ``val_to_add``: ``plus_val = c + v``,
  ``scaled = c * v * 2 - 1``), in both modes: vectorized (``ratio``, four pyarrow.compute calls)
  and row-wise (``ratio_rows``, Python arithmetic per row), against the same request without it
  (``driver_stats:conv_rate``),
  at 1 and 100 entities: Granero in process (``FeatureStore.get_online_features``) and over gRPC
  (a ``granero serve`` process, the generated stub, COLUMNS layout, request values as
  ``request_columns``); Feast 0.67 in process with the same view in ``pandas`` and ``python``
  mode. Medians of sequential calls (``--count``, after a warm-up), and the overhead: on-demand
  median minus plain median.
- **Granero's part.** The same request to a second on-demand view whose transform hands its two
  inputs back unchanged (``floor``): what Granero adds around any transform (reading the inputs
  with the request, building the Arrow arrays, running and checking the transform, shaping the
  answer). Beside it, the bench transform called alone on 1 and 100 rows: its own pyarrow calls,
  which no runner can make cheaper.
- **Training.** ``--train-rows`` rows through the transform as training runs it
  (``TrainingStep``): locally on one Arrow batch, and on Spark through ``mapInArrow``
  (``local[2]``, the DataFrame cached and counted before the clock starts; ``noop`` write).

Every system reads the same rows from its own database of one private redis-server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.processes import BENCH, FEAST_BIN, ROOT
from bench.redis_server import free_port, private_redis

DEFINITIONS = '''
import pyarrow.compute as pc
from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import OnDemandFeatureView, RequestSource

driver = Entity(join_keys={"driver_id": "int64"})
driver_stats = FeatureView(
    entities=[driver], ttl="30d",
    source=FileSource(path="SOURCE", timestamp_field="event_timestamp"),
    features=[Field(name="conv_rate", dtype="float64"), Field(name="acc_rate", dtype="float64")],
)
trip = RequestSource(name="trip", fields=[Field(name="val_to_add", dtype="float64")])


def ratio_math(columns):
    conv, add = columns["conv_rate"], columns["val_to_add"]
    return {"plus_val": pc.add(conv, add),
            "scaled": pc.subtract(pc.multiply(pc.multiply(conv, add), 2.0), 1.0)}


ratio = OnDemandFeatureView(
    inputs=[driver_stats[["conv_rate"]], trip],
    features=[Field(name="plus_val", dtype="float64"), Field(name="scaled", dtype="float64")],
    transform=ratio_math,
)


def ratio_row(row):
    conv, add = row["conv_rate"], row["val_to_add"]
    if conv is None or add is None:
        return {"plus_val": None, "scaled": None}
    return {"plus_val": conv + add, "scaled": conv * add * 2.0 - 1.0}


ratio_rows = OnDemandFeatureView(
    inputs=[driver_stats[["conv_rate"]], trip],
    features=[Field(name="plus_val", dtype="float64"), Field(name="scaled", dtype="float64")],
    transform=ratio_row, mode="row",
)


def passthrough(columns):
    return {"conv": columns["conv_rate"], "add": columns["val_to_add"]}


floor = OnDemandFeatureView(
    inputs=[driver_stats[["conv_rate"]], trip],
    features=[Field(name="conv", dtype="float64"), Field(name="add", dtype="float64")],
    transform=passthrough,
)
'''
PLAIN = ["driver_stats:conv_rate"]
ON_DEMAND = ["ratio:plus_val", "ratio:scaled"]
ROW = ["ratio_rows:plus_val", "ratio_rows:scaled"]
"""The same feature in row mode: Python arithmetic per row, no Arrow on the request path."""
TRIVIAL = ["floor:conv", "floor:add"]
"""The same request through a transform that does nothing: Granero's part of the overhead."""
BATCHES = (1, 100)


def write_source(path: Path, entities: int, end: datetime) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    ids = np.arange(1, entities + 1)
    table = pa.table({
        "driver_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array([end - timedelta(hours=1)] * entities,
                                    pa.timestamp("us", tz="UTC")),
        "conv_rate": rng.random(entities), "acc_rate": rng.random(entities),
    })
    pq.write_table(table, path)


def granero_repo(root: Path, source: Path, redis_port: int, serving_port: int, *,
                 project: str = "on_demand_bench", definitions: str = DEFINITIONS) -> Path:
    """A bench repo on Delta and the given Redis; ``SOURCE`` in ``definitions`` names ``source``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: {{path: data/registry}}\n"
        f"offline_store: {{type: delta, path: data/offline}}\n"
        f"online_store: {{type: redis, url: 'redis://127.0.0.1:{redis_port}/0'}}\n"
        f"serving: {{port: {serving_port}}}\n")
    (root / "definitions.py").write_text(definitions.replace("SOURCE", str(source)))
    return root


def load_online(repo: Path, source: Path) -> Any:
    """Apply, then write the source's rows online as an in-process sync writes them."""
    import pyarrow.parquet as pq

    from granero.feature_store import FeatureStore
    from granero.online.sync import write_table

    store = FeatureStore(repo)
    store.apply()
    defs = store.registered()
    view = defs.feature_views["driver_stats"]
    table = pq.read_table(source)
    table = table.append_column("created_timestamp", table["event_timestamp"])
    write_table(store.online_store, view, defs.join_keys(view), table)
    return store


def paired(calls: dict[str, Any], count: int, cpu: Any = time.process_time,
           block: int = 50) -> dict[str, dict[str, Any]]:
    """Each call ``count`` times, in alternating blocks (a loaded machine's drift hits both
    alike): wall latencies (ms) and CPU per call (us) as ``cpu`` counts it."""
    for call in calls.values():
        for _ in range(block):
            call()
    results: dict[str, dict[str, Any]] = {k: {"latencies_ms": [], "cpu_s": 0.0} for k in calls}
    for _ in range(max(1, count // block)):
        for kind, call in calls.items():
            spent = cpu()
            for _ in range(block):
                began = time.perf_counter()
                call()
                results[kind]["latencies_ms"].append((time.perf_counter() - began) * 1000)
            results[kind]["cpu_s"] += cpu() - spent
    for result in results.values():
        result["cpu_us_per_call"] = result.pop("cpu_s") / len(result["latencies_ms"]) * 1e6
    return results


def in_process(store: Any, entities: int, count: int) -> dict[str, dict]:
    import random

    rng = random.Random(7)
    ids = range(1, entities + 1)
    results = {}
    for batch in BATCHES:
        samples = [[{"driver_id": i} for i in rng.sample(ids, batch)] for _ in range(64)]
        request = {"val_to_add": [1.5] * batch}
        turn = iter(range(10**9))
        measured = paired({
            "plain": lambda s=samples, t=turn: store.get_online_features(s[next(t) % 64], PLAIN),
            "on_demand": lambda s=samples, t=turn, r=request: store.get_online_features(
                s[next(t) % 64], ON_DEMAND, request_data=r),
            "row": lambda s=samples, t=turn, r=request: store.get_online_features(
                s[next(t) % 64], ROW, request_data=r),
            "trivial": lambda s=samples, t=turn, r=request: store.get_online_features(
                s[next(t) % 64], TRIVIAL, request_data=r),
        }, count)
        results |= {f"{kind}/{batch}": m for kind, m in measured.items()}
    return results


def over_grpc(address: str, entities: int, count: int, server_pid: int) -> dict[str, dict]:
    """The server's CPU per request is read from /proc (the client's would hide it)."""
    import random

    import grpc

    from granero.serving.request_context import encode_request_columns
    from granero.serving.v1 import serving_pb2 as pb
    from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
    from granero.serving.v1.value_pb2 import Value

    rng = random.Random(7)
    results = {}
    with grpc.insecure_channel(address) as channel:
        stub = FeatureServingStub(channel)
        for batch in BATCHES:
            requests: dict[str, list] = {"plain": [], "on_demand": [], "row": [], "trivial": []}
            for kind, refs in (("plain", PLAIN), ("on_demand", ON_DEMAND), ("row", ROW),
                               ("trivial", TRIVIAL)):
                for _ in range(64):
                    request = pb.GetOnlineFeaturesRequest(layout=pb.COLUMNS)
                    request.features.refs.extend(refs)
                    ids = rng.sample(range(1, entities + 1), batch)
                    request.entity_columns["driver_id"].CopyFrom(Value(int64_list_val={"val": ids}))
                    if kind != "plain":
                        columns = encode_request_columns({"val_to_add": [1.5] * batch})
                        request.request_columns["val_to_add"].CopyFrom(columns["val_to_add"])
                    requests[kind].append(request)
            turn = iter(range(10**9))
            measured = paired({
                kind: (lambda sent=sent, t=turn: stub.GetOnlineFeatures(sent[next(t) % 64],
                                                                        timeout=30))
                for kind, sent in requests.items()}, count, cpu=lambda: _process_cpu(server_pid))
            results |= {f"{kind}/{batch}": m for kind, m in measured.items()}
    return results


def transform_alone(store: Any, count: int) -> dict[str, dict]:
    """The bench transform called directly on Arrow arrays of 1 and 100 rows: its own cost."""
    import pyarrow as pa

    view = store.transforms.transforms(store.registered())["ratio"]
    results = {}
    for batch in BATCHES:
        columns = {"conv_rate": pa.array([0.25] * batch), "val_to_add": pa.array([1.5] * batch)}
        measured = paired({"transform": lambda c=columns: view.transform(dict(c))}, count)
        results[f"transform/{batch}"] = measured["transform"]
    return results


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(repo: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([str(Path(sys.executable).parent / "granero"), "serve", "--repo",
                                str(repo), "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for_server(f"127.0.0.1:{port}", process)
    return process


def _wait_for_server(address: str, process: subprocess.Popen, seconds: float = 60) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                return
            except grpc.RpcError:
                time.sleep(0.2)
    raise SystemExit(f"granero serve did not answer on {address}")


def training(store: Any, rows: int) -> dict[str, float]:
    """Rows/s of the transform as training runs it: one local Arrow batch, and Spark."""
    import numpy as np
    import pyarrow as pa

    from granero.offline.on_demand_training import TrainingStep, _batches
    from granero.on_demand.request import split_request

    defs = store.registered()
    views = {"ratio": store.transforms.transforms(defs)["ratio"]}
    step = TrainingStep(split_request(defs, ON_DEMAND), views, True)
    rng = np.random.default_rng(7)
    batch = pa.RecordBatch.from_pydict({"driver_stats__conv_rate": rng.random(rows),
                                        "val_to_add": rng.random(rows)})
    began = time.perf_counter()
    step.extend_batch(batch)
    local = rows / (time.perf_counter() - began)
    frame = store.spark.createDataFrame(batch.to_pandas()).repartition(2).cache()
    frame.count()
    from pyspark.sql.types import DoubleType, StructField, StructType

    schema = StructType([*frame.schema.fields, StructField("ratio__plus_val", DoubleType()),
                         StructField("ratio__scaled", DoubleType())])
    began = time.perf_counter()
    frame.mapInArrow(_batches(step), schema).write.format("noop").mode("overwrite").save()
    spark = rows / (time.perf_counter() - began)
    store.spark.stop()
    return {"local_rows_per_s": local, "spark_rows_per_s": spark}


def feast_lookups(source: Path, out: Path, redis_port: int, entities: int, count: int,
                  end: datetime) -> dict:
    if not (FEAST_BIN / "python").exists():
        return {"skipped": "bench/.venv-feast is missing (bash bench/run.sh creates it)"}
    args = {"repo": str(out / "feast_repo"), "source": str(source), "redis_port": redis_port,
            "db": 1, "entities": entities, "batches": list(BATCHES), "count": count,
            "seconds": 120, "warmup": 20, "start": (end - timedelta(days=2)).isoformat(),
            "end": end.isoformat()}
    done = subprocess.run([str(FEAST_BIN / "python"), "-m", "bench.on_demand_feast", "lookups"],
                          input=json.dumps(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=1800)
    if done.returncode != 0:
        return {"failed": done.stderr[-2000:]}
    return json.loads(done.stdout)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: dict) -> str:
    lines = ["| system, path | entities | plain p50 (ms) | on-demand p50 (ms) | overhead p50 (us) "
             "| plain CPU/call (us) | on-demand CPU/call (us) | overhead CPU (us) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = (("Granero, in process, vectorized (pyarrow)", results["granero_sdk"], "on_demand"),
            ("Granero, in process, row mode (Python)", results["granero_sdk"], "row"),
            ("Granero, in process, pass-through transform (Granero's part)",
             results["granero_sdk"], "trivial"),
            ("Granero, gRPC (server CPU), vectorized", results["granero_grpc"], "on_demand"),
            ("Granero, gRPC (server CPU), row mode", results["granero_grpc"], "row"),
            ("Granero, gRPC (server CPU), pass-through transform", results["granero_grpc"],
             "trivial"),
            ("Feast 0.67, in process, pandas mode", _feast(results), "pandas"),
            ("Feast 0.67, in process, python mode", _feast(results), "python"))
    for label, measured, kind in rows:
        for batch in BATCHES:
            plain, od = measured.get(f"plain/{batch}", {}), measured.get(f"{kind}/{batch}", {})
            p50s = [median(m.get("latencies_ms", [])) for m in (plain, od)]
            cpus = [m.get("cpu_us_per_call", float("nan")) for m in (plain, od)]
            lines.append(f"| {label} | {batch} | {p50s[0]:.3f} | {p50s[1]:.3f} | "
                         f"{(p50s[1] - p50s[0]) * 1000:.0f} | {cpus[0]:.0f} | {cpus[1]:.0f} | "
                         f"{cpus[1] - cpus[0]:.0f} |")
    alone = results["transform_alone"]
    lines += ["", "The bench transform alone (its own pyarrow calls; p50 / CPU per call): " + ", ".join(
        f"{batch} rows {median(alone[f'transform/{batch}']['latencies_ms']) * 1000:.0f} us / "
        f"{alone[f'transform/{batch}']['cpu_us_per_call']:.0f} us" for batch in BATCHES),
        f"Load average (1 min) at the start and end: {results['load'][0]:.1f}, {results['load'][1]:.1f}"]
    train = results["training"]
    lines += ["", "| training through the transform | rows/s |", "|---|---:|",
              f"| local (one Arrow batch of {results['train_rows']:,} rows) | "
              f"{train['local_rows_per_s']:,.0f} |",
              f"| Spark mapInArrow (local[2]) | {train['spark_rows_per_s']:,.0f} |"]
    return "\n".join(lines)


def _feast(results: dict) -> dict:
    return results["feast"].get("measured", {})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(microsecond=0)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as scratch, private_redis(Path(scratch) / "redis") as port:
        source = Path(scratch) / "driver_stats.parquet"
        write_source(source, args.entities, end)
        serving_port = free_port()
        repo = granero_repo(Path(scratch) / "granero_repo", source, port, serving_port)
        store = load_online(repo, source)
        results: dict[str, Any] = {"entities": args.entities, "count": args.count,
                                   "train_rows": args.train_rows, "load": [os.getloadavg()[0]]}
        results["granero_sdk"] = in_process(store, args.entities, args.count)
        results["transform_alone"] = transform_alone(store, args.count)
        server = serve(repo, serving_port)
        try:
            results["granero_grpc"] = over_grpc(f"127.0.0.1:{serving_port}", args.entities,
                                                args.count, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        results["feast"] = feast_lookups(source, Path(scratch), port, args.entities, args.count, end)
        results["load"].append(os.getloadavg()[0])
        results["training"] = training(store, args.train_rows)
        store.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"on_demand-{stamp}.json").write_text(json.dumps(results, default=str))
    print(report(results))
    if "check" in results["feast"]:
        print(f"\nFeast check (driver 1, val_to_add 2.0): {results['feast']['check']}")


if __name__ == "__main__":
    main()
