"""A repo whose one view reads a Delta or Parquet source that tests append to between
incremental runs, with what the offline table, a training set and Redis hold afterwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import compile_definitions
from granero.feature_store import FeatureStore
from granero.offline.materialize import EPOCH

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NOW = T0 + 30 * DAY
"""A fixed now, later than every test's end: runs are never capped by the clock."""

rider = Entity(join_keys={"rider_id": "int64"})
Row = tuple[int, datetime, float]
"""(rider_id, ts, score), as the source holds it."""


def make_store(repo: Path, redis_url: str, fmt: str, lateness: str = "0s", source: Path | None = None) -> FeatureStore:
    """A repo (own project, so its Redis keys are its own) over ``source`` (default repo/source)."""
    repo.mkdir(parents=True, exist_ok=True)
    project = f"late_{uuid.uuid4().hex[:8]}"
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: {{path: registry}}\noffline_store: {{type: delta, path: offline}}\n"
        f"online_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n"
        "spark: {master: 'local[2]', conf: {spark.sql.shuffle.partitions: '2'}}\n"
    )
    view = FeatureView(
        entities=[rider],
        source=FileSource(path=str(source or repo / "source"), format=fmt, timestamp_field="ts",
                          allowed_lateness=lateness),
        ttl="60d",
        features=[Field(name="score", dtype="float64")],
    )
    store = FeatureStore(repo)
    store.registry.write_version(project, compile_definitions([("rider", rider), ("scores", view)]))
    return store


def append(spark, source: Path, fmt: str, rows: list[Row]) -> None:
    """One append to the source: a Delta commit, or one more Parquet file."""
    frame = pd.DataFrame(rows, columns=["rider_id", "ts", "score"])
    if fmt == "delta":
        spark.createDataFrame(frame).write.format("delta").mode("append").save(str(source))
        return
    source.mkdir(parents=True, exist_ok=True)
    index = len(list(source.glob("*.parquet")))
    frame.to_parquet(source / f"part-{index:04d}.parquet", index=False, coerce_timestamps="us")


def table_rows(store: FeatureStore) -> list[Row]:
    """The offline table's rows, sorted (duplicates kept, so a test sees them)."""
    micros = "unix_micros(event_timestamp)"
    found = store.offline_store.read("scores").selectExpr("rider_id", micros, "score").collect()
    return sorted((r[0], EPOCH + timedelta(microseconds=r[1]), r[2]) for r in found)


def expected_rows(source_rows: list[Row], end: datetime) -> list[Row]:
    return sorted(r for r in source_rows if r[1] < end)


def latest(source_rows: list[Row], end: datetime) -> dict[int, float]:
    """Per rider, the score of its newest row before ``end`` (what serving and training at
    ``end`` must return)."""
    newest: dict[int, Row] = {}
    for row in sorted(r for r in source_rows if r[1] < end):
        if row[0] not in newest or row[1] >= newest[row[0]][1]:
            newest[row[0]] = row
    return {rider_id: row[2] for rider_id, row in newest.items()}


def online_scores(store: FeatureStore, riders: list[int], at: datetime) -> dict[int, float | None]:
    result = store.get_online_features([{"rider_id": r} for r in riders], ["scores:score"], now=at)
    return dict(zip(riders, result.to_dict()["scores__score"], strict=True))


def training_scores(store: FeatureStore, riders: list[int], at: datetime) -> dict[int, float | None]:
    entities = pd.DataFrame({"rider_id": riders, "event_timestamp": [at] * len(riders)})
    frame = store.get_historical_features_pandas(entities, ["scores:score"])
    return {int(r): (None if pd.isna(s) else float(s)) for r, s in zip(frame["rider_id"], frame["scores__score"],
                                                                           strict=True)}
