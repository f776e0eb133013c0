"""Demo of late data: a row appended to a Delta source inside a window already materialized
reaches serving and training through ``granero materialize-incremental``.

    python feature_repo/scripts/late_data_demo.py [--out feature_repo/data/late_demo]

One process (one Spark session): a small repo under ``--out`` (the example's driver entity, a
``driver_ratings`` view over a Delta source), materialized incrementally; then one late row is
appended (a Delta commit) for driver 1001 one day back, the command runs again and prints what
it re-materialized and why, and the row is read online and in a training set.
"""

from __future__ import annotations

import argparse
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DEFINITIONS = '''from granero import Entity, FeatureView, Field, FileSource

driver = Entity(join_keys={"driver_id": "int64"})
driver_ratings = FeatureView(
    entities=[driver], ttl="7d", features=[Field(name="rating", dtype="float64")],
    source=FileSource(path="source", format="delta", timestamp_field="event_timestamp"),
)
'''


def write_repo(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "feature_store.yaml").write_text(
        "project: late_demo\nregistry: {path: registry}\noffline_store: {type: delta, path: offline}\n"
        "online_store: {type: embedded, data_dir: online}\nspark: {master: 'local[2]'}\n"
    )
    (out / "ratings.py").write_text(DEFINITIONS)


def append(spark, out: Path, rows: list[tuple[int, datetime, float]]) -> None:
    frame = pd.DataFrame(rows, columns=["driver_id", "event_timestamp", "rating"])
    spark.createDataFrame(frame).write.format("delta").mode("append").save(str(out / "source"))


def show(store, label: str) -> None:
    online = store.get_online_features([{"driver_id": 1001}], ["driver_ratings:rating"]).to_dict()
    entities = pd.DataFrame({"driver_id": [1001], "event_timestamp": [END]})
    training = store.get_historical_features_pandas(entities, ["driver_ratings:rating"])
    print(f"{label}: driver 1001 rating online {online['driver_ratings__rating'][0]}, "
          f"in training at {END:%Y-%m-%d %H:%M} {training['driver_ratings__rating'][0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("feature_repo/data/late_demo"))
    out = parser.parse_args().out.resolve()
    from granero.cli.main import app
    from granero.feature_store import FeatureStore

    write_repo(out)
    store = FeatureStore(out)
    store.apply()
    day = timedelta(days=1)
    append(store.spark, out, [(d, END - 3 * day + h * timedelta(hours=6), 4.0 + h / 10)
                              for d in (1001, 1002) for h in range(8)])  # two days of ratings
    app(["materialize-incremental", "--repo", str(out)], standalone_mode=False)
    show(store, "before")
    late = END - day - timedelta(hours=1)
    print(f"appending a late row: driver 1001, rating 1.5 at {late:%Y-%m-%d %H:%M} (already materialized)")
    append(store.spark, out, [(1001, late, 1.5)])
    app(["materialize-incremental", "--repo", str(out)], standalone_mode=False)
    show(store, "after")
    store.close()


if __name__ == "__main__":
    main()
