"""Granero's half of the benchmark: ``python -m bench.granero_side COMMAND < args.json``.

Runs in its own process and prints one JSON object on stdout (library output goes to stderr).
Spark starts before any clock does, so no number includes JVM start-up. Commands mirror
feast_side.py: apply, materialize (offline, then Redis), lookup, historical, plus capabilities
(which of the APIs it drives exist yet) and versions.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.side import run_command

MEASURED_APIS = ("materialize", "sync_online", "get_online_features", "get_historical_features",
                 "get_historical_features_pandas")


def _store(repo: str, run_dir: Path | None = None) -> Any:
    """The repo's FeatureStore; with ``run_dir``, on an empty registry and offline store there."""
    from granero.feature_store import FeatureStore

    store = FeatureStore(repo)
    if run_dir is None:
        return store
    shutil.rmtree(run_dir, ignore_errors=True)
    config = store.config
    config = config.model_copy(update={
        "registry": config.registry.model_copy(update={"path": str(run_dir / "registry")}),
        "offline_store": config.offline_store.model_copy(update={"path": str(run_dir / "offline")}),
    })
    store = FeatureStore(repo, config=config)
    store.apply()
    return store


def apply(args: dict) -> dict:
    began = time.perf_counter()
    _store(args["repo"]).apply()
    return {"seconds": time.perf_counter() - began}


def materialize(args: dict) -> dict:
    """Per run: an empty offline store filled from the source, then an emptied Redis DB synced.

    Every run starts from empty stores, so each does the work of the first: earlier runs on
    their own registry and offline folder, the last on the repo's own, which later phases read.
    """
    import redis

    start, end = datetime.fromisoformat(args["start"]), datetime.fromisoformat(args["end"])
    client = redis.Redis.from_url(args["redis_url"])
    offline, online = [], []
    for run in range(args["runs"]):
        last = run == args["runs"] - 1
        store = _store(args["repo"], None if last else Path(args["work_dir"]) / f"run-{run}")
        store.spark  # noqa: B018 (starts the JVM before the clock)
        began = time.perf_counter()
        store.materialize(start, end, sync_online=False)
        offline.append({"seconds": time.perf_counter() - began})
        if args["sync"]:
            client.flushdb()
            began = time.perf_counter()
            store.sync_online()
            online.append({"seconds": time.perf_counter() - began, "keys": client.dbsize()})
    return {"offline": offline, "online": online or None}


def lookup(args: dict) -> dict:
    """Sequential in-process ``get_online_features(...).to_dict()`` calls (as feast_side makes
    them), bounded by count and time."""
    store = _store(args["repo"])
    rng = random.Random(args["seed"])
    ids, batch = range(1, args["entities"] + 1), args["batch"]

    def call(entity_ids: Any) -> dict[str, list]:
        rows = [{"entity_id": i} for i in entity_ids]
        return store.get_online_features(rows, features=args["features"]).to_dict()

    call(rng.sample(ids, batch))  # warms the registry and the connection
    latencies: list[float] = []
    began = time.perf_counter()
    while len(latencies) < args["count"] and time.perf_counter() < began + args["seconds"]:
        entity_ids = rng.sample(ids, batch)
        sent = time.perf_counter()
        call(entity_ids)
        latencies.append((time.perf_counter() - sent) * 1000)
    elapsed = time.perf_counter() - began
    sample_ids = args.get("sample_ids") or []
    columns = list(call(sample_ids).values()) if sample_ids else []
    sample = {str(i): [column[row] for column in columns] for row, i in enumerate(sample_ids)}
    store.close()
    return {"latencies_ms": latencies, "elapsed_s": elapsed, "sample": sample}


def _retrieve_on_spark(store: Any, spark: Any, entity_path: str, features: list[str],
                       target: Path) -> dict:
    """One retrieval on Spark, forced by writing the result to Parquet; seconds and row counts."""
    shutil.rmtree(target, ignore_errors=True)
    entity_df = spark.read.parquet(entity_path).cache()
    entity_df.count()  # the input is in memory before the clock starts
    began = time.perf_counter()
    store.get_historical_features(entity_df, features=features).write.parquet(str(target))
    seconds = time.perf_counter() - began
    written = spark.read.parquet(str(target))
    first = features[0].replace(":", "__")
    with_values = written.where(f"{first} IS NOT NULL").count()
    counts = {"rows": written.count(), "rows_with_values": with_values}
    entity_df.unpersist()
    shutil.rmtree(target, ignore_errors=True)
    return {"seconds": seconds, **counts}


def _retrieve_to_pandas(store: Any, entity_df: Any, features: list[str]) -> dict:
    """One ``get_historical_features_pandas`` (pandas in, pandas out, as Feast's ``to_df``)."""
    began = time.perf_counter()
    frame = store.get_historical_features_pandas(entity_df, features=features)
    seconds = time.perf_counter() - began
    with_values = int(frame[features[0].replace(":", "__")].notna().sum())
    return {"seconds": seconds, "rows": len(frame), "rows_with_values": with_values}


def historical(args: dict) -> dict:
    """Per entity table, ``runs`` timed retrievals both ways, each after an untimed warm-up:
    pandas in and out (the engine Granero picks for the size), and on Spark into Parquet."""
    import pandas as pd

    store = _store(args["repo"])
    spark, work, features = store.spark, Path(args["work_dir"]), args["features"]
    smallest = min(args["entity_dfs"], key=int)
    frames = {size: pd.read_parquet(path) for size, path in args["entity_dfs"].items()}
    _retrieve_to_pandas(store, frames[smallest], features)
    _retrieve_on_spark(store, spark, args["entity_dfs"][smallest], features, work / "warm-up")
    results = {}
    for size, path in args["entity_dfs"].items():
        target = work / f"training-{size}"
        results[size] = {
            "input_rows": int(size),
            "engine": store.training_engine(frames[size], features=features),
            "runs": [_retrieve_to_pandas(store, frames[size], features)
                     for _ in range(args["runs"])],
            "spark_runs": [_retrieve_on_spark(store, spark, path, features, target)
                           for _ in range(args["runs"])],
        }
    return {"sizes": results}


def capabilities(_: dict) -> dict:
    """Which APIs the benchmark drives exist yet (the harness reports the others as n/a)."""
    from granero.cli.main import app
    from granero.feature_store import FeatureStore

    commands = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    found = {api: hasattr(FeatureStore, api) for api in MEASURED_APIS}
    return {**found, "serve": "serve" in commands}


def versions(_: dict) -> dict:
    from importlib.metadata import version

    names = ("granero", "pyspark", "delta-spark", "redis", "grpcio")
    return {name: version(name) for name in names}


COMMANDS = {"apply": apply, "materialize": materialize, "lookup": lookup, "historical": historical,
            "capabilities": capabilities, "versions": versions}


def main() -> None:
    # The online sync runs Python on Spark's workers: they must import granero from this venv.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    run_command(COMMANDS)


if __name__ == "__main__":
    main()
