"""Feast's half of the benchmark, run by bench/.venv-feast's python (never the project's):

    bench/.venv-feast/bin/python bench/feast_side.py COMMAND < args.json

Prints one JSON object on stdout; whatever Feast prints goes to stderr. Imports only the
standard library, Feast and what Feast installs (pandas, redis), so Feast's pins never meet
Granero's. Commands mirror granero_side.py: apply, materialize, lookup, historical, versions.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.side import run_command


def apply(args: dict) -> dict:
    """``feast apply`` through this venv's CLI (it imports the repo's definition files)."""
    feast = Path(sys.executable).parent / "feast"
    began = time.perf_counter()
    subprocess.run([str(feast), "-c", args["repo"], "apply"], check=True, stdout=sys.stderr)
    return {"seconds": time.perf_counter() - began}


def materialize(args: dict) -> dict:
    """``store.materialize(start, end)`` into an emptied Redis database, ``runs`` times."""
    import redis
    from feast import FeatureStore

    store = FeatureStore(repo_path=args["repo"])
    client = redis.Redis.from_url(args["redis_url"])
    start, end = datetime.fromisoformat(args["start"]), datetime.fromisoformat(args["end"])
    runs = []
    for _ in range(args["runs"]):
        client.flushdb()
        began = time.perf_counter()
        store.materialize(start_date=start, end_date=end)
        runs.append({"seconds": time.perf_counter() - began, "keys": client.dbsize()})
    return {"runs": runs}


def lookup(args: dict) -> dict:
    """Sequential in-process ``get_online_features`` calls, bounded by count and time."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=args["repo"])
    rng = random.Random(args["seed"])
    ids, batch = range(1, args["entities"] + 1), args["batch"]

    def call(entity_ids: Any) -> dict:
        rows = [{"entity_id": i} for i in entity_ids]
        return store.get_online_features(features=args["features"], entity_rows=rows).to_dict()

    call(rng.sample(ids, batch))  # warms the registry cache and the connection
    latencies: list[float] = []
    began = time.perf_counter()
    while len(latencies) < args["count"] and time.perf_counter() < began + args["seconds"]:
        entity_ids = rng.sample(ids, batch)
        sent = time.perf_counter()
        call(entity_ids)
        latencies.append((time.perf_counter() - sent) * 1000)
    elapsed = time.perf_counter() - began
    return {"latencies_ms": latencies, "elapsed_s": elapsed,
            "sample": _sample(call, args.get("sample_ids") or [], args["features"])}


def _sample(call: Any, ids: list[int], features: list[str]) -> dict[str, list]:
    """Values for some entities, so the harness can check both systems serve the same data."""
    if not ids:
        return {}
    result = call(ids)
    names = [ref.split(":", 1)[1] for ref in features]
    return {str(i): [result[name][row] for name in names] for row, i in enumerate(ids)}


def _retrieve(store: Any, entity_df: Any, features: list[str]) -> dict:
    began = time.perf_counter()
    frame = store.get_historical_features(entity_df=entity_df, features=features).to_df()
    seconds = time.perf_counter() - began
    with_values = int(frame[features[0].split(":", 1)[1]].notna().sum())
    return {"seconds": seconds, "rows": len(frame), "rows_with_values": with_values}


def historical(args: dict) -> dict:
    """``runs`` timed ``get_historical_features(...).to_df()`` per entity table, after a warm-up."""
    import pandas as pd
    from feast import FeatureStore

    store, features = FeatureStore(repo_path=args["repo"]), args["features"]
    frames = {size: pd.read_parquet(path) for size, path in args["entity_dfs"].items()}
    _retrieve(store, frames[min(frames, key=int)], features)
    results = {}
    for size, frame in frames.items():
        runs = [_retrieve(store, frame, features) for _ in range(args["runs"])]
        results[size] = {"input_rows": len(frame), "runs": runs}
    return {"sizes": results}


def versions(_: dict) -> dict:
    import feast

    return {"feast": feast.__version__, "python": sys.version.split()[0]}


COMMANDS = {"apply": apply, "materialize": materialize, "lookup": lookup, "historical": historical,
            "versions": versions}


def main() -> None:
    run_command(COMMANDS)


if __name__ == "__main__":
    main()
