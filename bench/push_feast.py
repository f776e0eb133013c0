"""Feast's half of the push bench (bench/push.py), run by bench/.venv-feast's python:

    bench/.venv-feast/bin/python -m bench.push_feast pushes < args.json

The same view (driver_id; conv_rate, acc_rate float64; trips int64) behind a Feast 0.67
``PushSource`` whose batch source is a Parquet file, pushed with ``store.push`` and
``PushMode.ONLINE_AND_OFFLINE`` (Redis, and an append to the file offline store), in batches of
1, 100 and 1,000 rows of the same data Granero pushes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.on_demand_feast import YAML as ON_DEMAND_YAML
from bench.side import run_command

DEFINITIONS = '''
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
batch = FileSource(path="{source}", timestamp_field="event_timestamp")
pushed = PushSource(name="driver_push", batch_source=batch)
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days=30), source=pushed, online=True,
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="acc_rate", dtype=Float64),
            Field(name="trips", dtype=Int64)],
)
'''

YAML = ON_DEMAND_YAML.replace("on_demand_bench", "push_bench")  # the same stores


def pushes(args: dict) -> dict:
    """Per batch size, the latency (ms) of each of ``count`` sequential pushes (bounded by
    ``seconds``), after ``warmup`` pushes."""
    import pandas as pd
    from feast import FeatureStore
    from feast.data_source import PushMode

    repo = Path(args["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(YAML.format(port=args["redis_port"], db=args["db"]))
    (repo / "definitions.py").write_text(DEFINITIONS.format(source=args["source"]))
    subprocess.run([str(Path(sys.executable).parent / "feast"), "-c", str(repo), "apply"],
                   check=True, stdout=sys.stderr)
    store = FeatureStore(repo_path=str(repo))
    frame = pd.read_parquet(args["source"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    measured = {}
    for batch in args["batches"]:
        chunks = [frame.iloc[i : i + batch] for i in range(0, len(frame) - batch + 1, batch)][:64]
        for chunk in chunks[: args["warmup"]]:
            store.push("driver_push", chunk, to=PushMode.ONLINE_AND_OFFLINE)
        latencies, deadline = [], time.monotonic() + args["seconds"]
        while len(latencies) < args["count"] and time.monotonic() < deadline:
            chunk = chunks[len(latencies) % len(chunks)]
            began = time.perf_counter()
            store.push("driver_push", chunk, to=PushMode.ONLINE_AND_OFFLINE)
            latencies.append((time.perf_counter() - began) * 1000)
        measured[str(batch)] = latencies
    check = store.get_online_features(features=["driver_stats:trips"],
                                      entity_rows=[{"driver_id": 1}]).to_dict()
    return {"measured": measured, "check": check["trips"][0]}


def versions(_: dict) -> dict:
    import feast

    return {"feast": feast.__version__}


if __name__ == "__main__":
    run_command({"pushes": pushes, "versions": versions})
