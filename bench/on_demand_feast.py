"""Feast's half of the on-demand bench (bench/on_demand.py), run by bench/.venv-feast's python:

    bench/.venv-feast/bin/python -m bench.on_demand_feast lookups < args.json

The same view and transform as Granero's (``conv_rate`` plus a request value ``val_to_add``: a
few arithmetic operations on two inputs), as Feast 0.67 on-demand views in ``pandas`` and
``python`` mode, applied and materialized into Redis, then timed with in-process
``get_online_features`` at 1 and 100 entities, next to the same request without the view.
"""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench.side import run_command

DEFINITIONS = '''
from datetime import timedelta
from typing import Any

import pandas as pd
from feast import Entity, FeatureView, Field, FileSource, RequestSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days=30),
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="acc_rate", dtype=Float64)],
    source=FileSource(path="{source}", timestamp_field="event_timestamp"), online=True,
)
trip = RequestSource(name="trip", schema=[Field(name="val_to_add", dtype=Float64)])
OUTPUTS = [Field(name="plus_val", dtype=Float64), Field(name="scaled", dtype=Float64)]


@on_demand_feature_view(sources=[driver_stats, trip], schema=OUTPUTS, mode="pandas")
def ratio_pandas(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["plus_val"] = inputs["conv_rate"] + inputs["val_to_add"]
    out["scaled"] = inputs["conv_rate"] * inputs["val_to_add"] * 2.0 - 1.0
    return out


@on_demand_feature_view(sources=[driver_stats, trip], schema=OUTPUTS, mode="python")
def ratio_python(inputs: dict[str, Any]) -> dict[str, Any]:
    return {{
        "plus_val": [c + v for c, v in zip(inputs["conv_rate"], inputs["val_to_add"])],
        "scaled": [c * v * 2.0 - 1.0 for c, v in zip(inputs["conv_rate"], inputs["val_to_add"])],
    }}
'''

YAML = """\
project: on_demand_bench
registry: data/registry.db
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:{port},db={db}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""

REQUESTS = {
    "plain": ["driver_stats:conv_rate"],
    "pandas": ["ratio_pandas:plus_val", "ratio_pandas:scaled"],
    "python": ["ratio_python:plus_val", "ratio_python:scaled"],
}


def lookups(args: dict) -> dict:
    """Apply and materialize the repo, then per request kind and batch size the latencies (ms)
    of sequential in-process lookups, bounded by ``count`` and ``seconds``."""
    from feast import FeatureStore

    repo = Path(args["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(YAML.format(port=args["redis_port"], db=args["db"]))
    (repo / "definitions.py").write_text(DEFINITIONS.format(source=args["source"]))
    feast = Path(sys.executable).parent / "feast"
    subprocess.run([str(feast), "-c", str(repo), "apply"], check=True, stdout=sys.stderr)
    store = FeatureStore(repo_path=str(repo))
    store.materialize(datetime.fromisoformat(args["start"]), datetime.fromisoformat(args["end"]))
    from bench.on_demand import paired

    rng = random.Random(7)
    ids = range(1, args["entities"] + 1)
    measured = {}
    for batch in args["batches"]:
        samples = [rng.sample(ids, batch) for _ in range(64)]
        turn = iter(range(10**9))
        calls = {kind: _call(store, features, samples, turn, kind != "plain")
                 for kind, features in REQUESTS.items()}
        measured |= {f"{kind}/{batch}": m for kind, m in paired(calls, args["count"]).items()}
    check = store.get_online_features(
        features=REQUESTS["pandas"] + REQUESTS["python"] + REQUESTS["plain"],
        entity_rows=[{"driver_id": 1, "val_to_add": 2.0}], full_feature_names=True).to_dict()
    return {"measured": measured, "check": {k: v[0] for k, v in check.items()}}


def _call(store, features: list[str], samples: list[list[int]], turn, request: bool):
    extra = {"val_to_add": 1.5} if request else {}

    def call() -> dict:
        rows = [{"driver_id": i, **extra} for i in samples[next(turn) % len(samples)]]
        return store.get_online_features(features=features, entity_rows=rows).to_dict()

    return call


def versions(_: dict) -> dict:
    import feast

    return {"feast": feast.__version__}


if __name__ == "__main__":
    run_command({"lookups": lookups, "versions": versions})
