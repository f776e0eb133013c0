"""A repo with an on-demand view over every dtype, its source data, and the oracle of its rows.

The oracle answers a training row the slow, obvious way: the view's latest row with the same
driver, event time in [ts - ttl, ts] (latest created on ties), then the transform written again
per row in plain Python.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from granero.types import arrow_type
from tests.repo_builder import write_repo

BASE = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = (BASE - timedelta(days=1), BASE + timedelta(days=2))
TTL = timedelta(hours=6)
FEATURES = {"f_int": "int64", "f_float": "float32", "f_double": "float64", "f_bool": "bool",
            "f_str": "string", "f_ts": "timestamp", "f_list": "list<int64>"}
REQUEST = {"r_int": "int64", "r_double": "float64", "r_str": "string", "r_bytes": "bytes"}
OUTPUTS = {"o_int": "int64", "o_double": "float64", "o_float": "float32", "o_bool": "bool", "o_str": "string",
           "o_bytes": "bytes", "o_ts": "timestamp", "o_list": "list<int64>"}

CONFIG = """
project: od
registry: {path: data/registry}
offline_store: {type: delta, path: data/offline}
online_store: {type: embedded, data_dir: data/online}
"""

ENTITIES = '''
from granero import Entity
driver = Entity(join_keys={"driver_id": "int64"})
'''

VIEWS = f'''
from entities import driver
from granero import FeatureView, Field, FileSource
stats = FeatureView(
    entities=[driver],
    source=FileSource(path="data/stats", timestamp_field="event_timestamp", created_timestamp_field="created"),
    ttl="6h",
    features=[{", ".join(f'Field(name="{n}", dtype="{d}")' for n, d in FEATURES.items())}],
)
'''

ON_DEMAND = f'''
import pyarrow.compute as pc
from views import stats
from granero import Field, OnDemandFeatureView, RequestSource, on_demand_feature_view

trip = RequestSource(name="trip", fields=[{", ".join(f'Field(name="{n}", dtype="{d}")' for n, d in REQUEST.items())}])

FAIL_ON = {{666: "raise", 777: "length", 888: "dtype"}}


def combine(c):
    failing = set(FAIL_ON) & set(c["r_int"].to_pylist())
    mode = FAIL_ON[failing.pop()] if failing else ""
    if mode == "raise":
        raise ValueError("r_int 666 is not a trip")
    o_int = pc.add(pc.multiply(c["f_int"], 2), c["r_int"])
    return {{
        "o_int": pc.divide(pc.cast(c["r_int"], "float64"), 16.0) if mode == "dtype" else o_int,
        "o_double": pc.multiply(c["f_double"], c["r_double"]),
        "o_float": c["f_float"],
        "o_bool": pc.invert(c["f_bool"]),
        "o_str": pc.binary_join_element_wise(c["f_str"], c["r_str"], "-"),
        "o_bytes": c["r_bytes"][1:] if mode == "length" else c["r_bytes"],
        "o_ts": c["f_ts"],
        "o_list": c["f_list"],
    }}


every_dtype = OnDemandFeatureView(
    inputs=[stats, trip],
    features=[{", ".join(f'Field(name="{n}", dtype="{d}")' for n, d in OUTPUTS.items())}],
    transform=combine,
)


@on_demand_feature_view(inputs=[stats[["f_int"]], trip], features=[Field(name="total", dtype="int64")], mode="row")
def row_total(row):
    return {{"total": None if row["f_int"] is None or row["r_int"] is None else row["f_int"] + row["r_int"]}}
'''


def build_repo(root: Path, seed: int = 3, drivers: int = 12, rows: int = 400) -> tuple[Path, list[dict]]:
    """The repo's files and its source data; returns the path and the source rows."""
    repo = write_repo(root, feature_store_yaml=CONFIG, entities=ENTITIES, views=VIEWS, on_demand=ON_DEMAND)
    rng = random.Random(seed)
    drawn = [_source_row(rng, drivers) for _ in range(rows)]
    stamps = [(r["driver_id"], r["event_timestamp"], r["created"]) for r in drawn]
    source = [r for i, r in enumerate(drawn) if stamps[i] not in stamps[:i]]  # no full ties: one row each
    columns = {"driver_id": pa.array([r["driver_id"] for r in source], pa.int64())}
    for name in ("event_timestamp", "created"):
        columns[name] = pa.array([r[name] for r in source], pa.timestamp("us", tz="UTC"))
    for name, dtype in FEATURES.items():
        columns[name] = pa.array([r[name] for r in source], arrow_type(dtype))
    (repo / "data" / "stats").mkdir(parents=True)
    pq.write_table(pa.table(columns), repo / "data" / "stats" / "part-0.parquet")
    return repo, source


def _source_row(rng: random.Random, drivers: int) -> dict:
    event = BASE + timedelta(minutes=rng.randrange(0, 36 * 60, 7))
    maybe = lambda value: None if rng.random() < 0.1 else value  # noqa: E731
    return {
        "driver_id": rng.randrange(drivers),
        "event_timestamp": event,
        "created": maybe(event + timedelta(minutes=rng.choice([0, 1, 5]))),
        "f_int": maybe(rng.randrange(-1000, 1000)),
        "f_float": maybe(rng.choice([0.5, -1.25, 3.0, 1e-3])),
        "f_double": maybe(rng.uniform(-10, 10)),
        "f_bool": maybe(rng.random() < 0.5),
        "f_str": maybe(rng.choice(["a", "bb", "", "ü"])),
        "f_ts": maybe(BASE + timedelta(microseconds=rng.randrange(10**12))),
        "f_list": maybe([rng.randrange(5) for _ in range(rng.randrange(3))]),
    }


def entity_rows(rng: random.Random, n: int, drivers: int) -> list[dict]:
    return [{
        "driver_id": rng.randrange(drivers + 2),  # some drivers have no rows
        "event_timestamp": BASE + timedelta(minutes=rng.randrange(-60, 40 * 60)),
        "r_int": None if rng.random() < 0.1 else rng.randrange(-50, 50),
        "r_double": None if rng.random() < 0.1 else rng.uniform(-2, 2),
        "r_str": None if rng.random() < 0.1 else rng.choice(["x", "yy"]),
        "r_bytes": None if rng.random() < 0.1 else rng.choice([b"\x00", b"ab"]),
        "label": rng.random(),
    } for _ in range(n)]


def as_of(source: list[dict], driver: int, ts: datetime) -> dict | None:
    """The oracle's point-in-time row: same driver, event in [ts - ttl, ts], greatest (event,
    created), a null created lowest."""
    seen = [r for r in source if r["driver_id"] == driver and ts - TTL <= r["event_timestamp"] <= ts]
    low = datetime.min.replace(tzinfo=UTC)
    return max(seen, key=lambda r: (r["event_timestamp"], r["created"] or low), default=None)


def expected(source: list[dict], row: dict) -> dict:
    """The oracle's on-demand outputs of one entity row (the transform, per row, in Python)."""
    found = as_of(source, row["driver_id"], row["event_timestamp"]) or dict.fromkeys(FEATURES)

    def both(a, b, f):
        return None if a is None or b is None else f(a, b)

    return {
        "every_dtype__o_int": both(found["f_int"], row["r_int"], lambda a, b: 2 * a + b),
        "every_dtype__o_double": both(found["f_double"], row["r_double"], lambda a, b: a * b),
        "every_dtype__o_float": None if found["f_float"] is None else float(np.float32(found["f_float"])),
        "every_dtype__o_bool": None if found["f_bool"] is None else not found["f_bool"],
        "every_dtype__o_str": both(found["f_str"], row["r_str"], lambda a, b: f"{a}-{b}"),
        "every_dtype__o_bytes": row["r_bytes"],
        "every_dtype__o_ts": found["f_ts"],
        "every_dtype__o_list": found["f_list"],
        "row_total__total": both(found["f_int"], row["r_int"], lambda a, b: a + b),
        "stats__f_int": found["f_int"],
    }
