"""Seeded benchmark data: one source table and one entity table, as Parquet.

Source: ``rows_per_entity`` rows per entity, one per day over the days before ``end`` (each at a
random hour), with a ``created`` time a few minutes later and float64 features ``f0..f<n-1>``.

Entity table: rows drawn over the 12 days before ``end`` — two days more than the source
covers — so some rows ask for an entity before its first feature row (the view's ttl is 2 days):
the point-in-time answer there is nulls. 2% of the ids have no feature rows at all, and 1% of
the rows repeat an earlier (entity_id, event_timestamp) with another label: both kinds are legal
training rows that a correct join must return unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.scales import Scale

ENTITY_DF_DAYS = 12
UNKNOWN_IDS = 0.02
DUPLICATE_ROWS = 0.01


@dataclass(frozen=True)
class BenchData:
    source_dir: Path
    entity_dfs: dict[int, Path]
    """Entity table path per size."""
    start: datetime
    end: datetime
    """The source's event times lie in [start, end)."""


def feature_names(scale: Scale) -> list[str]:
    return [f"f{i}" for i in range(scale.features)]


def source_table(rng: np.random.Generator, scale: Scale, end: datetime) -> pd.DataFrame:
    n, days = scale.source_rows, scale.rows_per_entity
    day = np.tile(np.arange(1, days + 1), scale.entities)
    seconds = rng.integers(0, 86_400, n)
    event = pd.Timestamp(end) - pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame(
        {
            "entity_id": np.repeat(np.arange(1, scale.entities + 1, dtype=np.int64), days),
            "event_timestamp": event,
            "created": event + pd.to_timedelta(rng.integers(1, 30 * 60, n), unit="s"),
        }
    )
    values = rng.standard_normal((n, scale.features))
    return frame.join(pd.DataFrame(values, columns=feature_names(scale)))


def entity_table(rng: np.random.Generator, scale: Scale, end: datetime, rows: int) -> pd.DataFrame:
    top = int(scale.entities * (1 + UNKNOWN_IDS))
    seconds = rng.integers(0, ENTITY_DF_DAYS * 86_400, rows)
    frame = pd.DataFrame(
        {
            "entity_id": rng.integers(1, top + 1, rows).astype(np.int64),
            "event_timestamp": pd.Timestamp(end) - pd.to_timedelta(seconds, unit="s"),
            "label": rng.integers(0, 2, rows).astype(np.int64),
        }
    )
    copies = rng.choice(rows, int(rows * DUPLICATE_ROWS), replace=False)
    originals = rng.integers(0, rows, len(copies))
    frame.loc[copies, ["entity_id", "event_timestamp"]] = frame.loc[
        originals, ["entity_id", "event_timestamp"]
    ].values
    return frame.astype({"entity_id": np.int64})


SOURCE_ROW_GROUP = 128 * 1024
"""Rows per Parquet row group of the source: a usual size, and one Spark task can read each.
(pyarrow's default, 1Mi rows, would put the whole default-scale source in one task.)"""


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True,
                     row_group_size=SOURCE_ROW_GROUP)


def generate(out: Path, scale: Scale, end: datetime, seed: int) -> BenchData:
    """Write the source and one entity table per size under ``out``; same seed, same bytes."""
    rng = np.random.default_rng(seed)
    source_dir = out / "source"
    write_parquet(source_table(rng, scale, end), source_dir / "part-00000.parquet")
    entities = entity_table(rng, scale, end, max(scale.entity_df_sizes))
    paths = {}
    for size in scale.entity_df_sizes:
        paths[size] = out / f"entity_df_{size}.parquet"
        write_parquet(entities.head(size), paths[size])
    start = end - timedelta(days=scale.rows_per_entity)
    return BenchData(source_dir, paths, start, end)


def expected_rows_with_values(data: BenchData, size: int, ttl: timedelta) -> int:
    """Entity rows a correct point-in-time join fills: a feature row within [ts - ttl, ts].

    Computed independently of both systems (pandas ``merge_asof``), as the reference count.
    """
    entities = pd.read_parquet(data.entity_dfs[size]).sort_values("event_timestamp")
    source = pd.read_parquet(data.source_dir, columns=["entity_id", "event_timestamp"])
    source = source.assign(found=True).sort_values("event_timestamp")
    joined = pd.merge_asof(
        entities,
        source,
        on="event_timestamp",
        by="entity_id",
        direction="backward",
        tolerance=pd.Timedelta(ttl),
        allow_exact_matches=True,
    )
    return int(joined["found"].notna().sum())
