"""Feast 0.67's side of bench/aggregations_training.py, run in Feast's own venv:
``bench/.venv-feast/bin/python -m bench.aggregations_feast historical < args.json``.

Defines the same 12 aggregates as a ``BatchFeatureView(aggregations=...)`` over the same events
(file offline store, local provider) and asks ``get_historical_features`` for them. Prints what
came back: the seconds and whether the columns hold windowed aggregates, or the error.
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

from bench.side import run_command


def historical(args: dict) -> dict:
    import pandas as pd
    from feast import BatchFeatureView, Entity, FeatureStore, Field, FileSource
    from feast.aggregation import Aggregation
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64

    folder = Path(args["folder"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = RepoConfig(project="bench_aggregations", registry=str(folder / "registry.db"), provider="local",
                        offline_store={"type": "file"}, online_store={"type": "sqlite", "path": str(folder / "o.db")},
                        entity_key_serialization_version=3)
    store = FeatureStore(config=config, repo_path=str(folder))
    driver = Entity(name="driver", join_keys=["entity_id"], value_type=None)
    source = FileSource(path=str(Path(args["events"]) / "part-0.parquet"), timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    aggregations = [
        Aggregation(column="fare", function=f, time_window=timedelta(seconds=s), name=f"fare_{f}_{label}")
        for label, s in args["windows"].items() for f in args["functions"]
    ]
    view = BatchFeatureView(
        name="trips", entities=[driver], source=source, ttl=timedelta(days=8),
        schema=[Field(name="entity_id", dtype=Int64), Field(name="fare", dtype=Float64)], aggregations=aggregations,
    )
    store.apply([driver, view])
    entities = pd.read_parquet(args["entities"])
    refs = [f"trips:{a.name}" for a in aggregations]
    began = time.perf_counter()
    try:
        frame = store.get_historical_features(entity_df=entities, features=refs).to_df()
    except Exception as error:  # noqa: BLE001 -- what Feast says is the result
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "columns": list(frame.columns), "rows": len(frame),
            "sample": frame.head(3).astype(str).to_dict("records")}


if __name__ == "__main__":
    run_command({"historical": historical})
