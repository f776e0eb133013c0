"""Online store benchmark (not a test): sync throughput from local Spark, lookup latency.

    .venv/bin/python -m bench.online_store [--rows 200000] [--features 20] [--calls 2000]

Starts a private redis-server (tests.conftest.start_redis). First, before Spark is loaded (as in
a serving process), times the in-process ``lookup`` of 1 and 100 entities x all features. Then
builds an offline-table-shaped DataFrame of ``rows`` entities x ``features`` float64 features
(cached, so generating it is not timed) and syncs it twice (cold: Python workers start; warm:
they are reused). Prints one JSON object. Lookups are timed twice: as is, and after
``gc.freeze()`` (which keeps the cyclic GC from scanning every object built at startup: the
p99 tail of large lookups is that scan).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from tests.conftest import free_port, start_redis

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import compile_definitions
from granero.definitions.refs import resolve_features
from granero.offline.spark_session import SparkConfig, get_spark
from granero.online.encoding import encode_entity_keys, value_codec
from granero.online.lookup import lookup
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import sync_view, write_rows


def definitions(features: int):
    driver = Entity(join_keys={"driver_id": "int64"})
    view = FeatureView(
        entities=[driver],
        source=FileSource(path="x", timestamp_field="ts"),
        ttl="1d",
        features=[Field(name=f"f{i}", dtype="float64") for i in range(features)],
    )
    return compile_definitions([("driver", driver), ("bench", view)])


def frame(spark, rows: int, features: int):
    columns = ", ".join(f"rand({i}) AS f{i}" for i in range(features))
    df = spark.sql(
        f"SELECT id AS driver_id, current_timestamp() - INTERVAL 1 MINUTE AS event_timestamp, "
        f"CAST(NULL AS TIMESTAMP) AS created_timestamp, {columns} FROM range({rows})"
    )
    df = df.repartition(spark.sparkContext.defaultParallelism).cache()
    df.count()
    return df


def encode_only(df, defs, view) -> float:
    """Keys/s of encoding alone (keys + values, one process), on Arrow batches of 10k rows."""
    table = pa.Table.from_pandas(df.limit(50_000).toPandas(), preserve_index=False)
    codec = value_codec(tuple((f.name, f.dtype) for f in view.features))
    began = time.perf_counter()
    for batch in table.to_batches(10_000):
        encode_entity_keys(["int64"], [batch.column(0)])
        codec.encode_columns(batch.column(1), batch.column(2), batch.columns[3:])
    return table.num_rows / (time.perf_counter() - began)


def latencies(store, views, rows, calls: int) -> dict[str, float]:
    now = datetime.now(UTC)
    seconds = []
    for _ in range(calls):
        began = time.perf_counter()
        lookup(store, views, rows, now)
        seconds.append(time.perf_counter() - began)
    cuts = statistics.quantiles(seconds, n=100)
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


def lookup_latencies(settings, defs, view, calls: int) -> dict[str, dict[str, float]]:
    """p50/p99 of 1 and 100 entities x every feature, in a process without Spark loaded."""
    store = RedisStore(settings, "bench")
    moment = datetime.now(UTC) - timedelta(minutes=1)
    features = {f.name: 0.5 for f in view.features}
    rows = [{"driver_id": d, "event_timestamp": moment, **features} for d in range(100)]
    write_rows(store, view, defs.join_keys(view), rows)
    views = resolve_features(defs, features=["bench:*"])
    result = {}
    for entities in (1, 100):
        entity_rows = [{"driver_id": d} for d in range(entities)]
        result[f"lookup_{entities}x{len(view.features)}"] = latencies(
            store, views, entity_rows, calls
        )
    store.close()
    return result


def sync_throughput(settings, defs, view, rows: int) -> dict[str, object]:
    spark = get_spark(SparkConfig(master="local[*]"))
    spark.sparkContext.setLogLevel("ERROR")
    df = frame(spark, rows, len(view.features))
    result: dict[str, object] = {"encode_only_keys_per_s": round(encode_only(df, defs, view))}
    for run in ("cold", "warm"):
        began = time.perf_counter()
        written = sync_view(df, settings, "bench", view, defs.join_keys(view))
        elapsed = time.perf_counter() - began
        result[f"sync_{run}"] = {
            "seconds": round(elapsed, 2),
            "written": written,
            "keys_per_s": round(rows / elapsed),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    port = free_port()
    server = start_redis(Path(tempfile.mkdtemp()), port)
    try:
        defs = definitions(args.features)
        view = defs.feature_views["bench"]
        settings = RedisSettings(f"redis://127.0.0.1:{port}/0")
        result = {
            "rows": args.rows,
            "features": args.features,
            "cores": os.cpu_count(),
            "load_average": os.getloadavg()[0],
        }
        result["lookups"] = lookup_latencies(settings, defs, view, args.calls)  # before Spark loads
        gc.collect()
        gc.freeze()  # as a serving process should once started
        result["lookups_after_gc_freeze"] = lookup_latencies(settings, defs, view, args.calls)
        result |= sync_throughput(settings, defs, view, args.rows)
        print(json.dumps(result, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
