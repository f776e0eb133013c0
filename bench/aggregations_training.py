"""Training retrieval with windowed aggregates: Granero's two engines beside a hand-written Spark
SQL range join and Feast 0.67, at three sizes (is the cost near-linear?).

    .venv/bin/python -m bench.aggregations_training [--scale small|default|large] [--runs 1] [--skip feast]

Workload (issue 12): entity rows (entity_id, t) over events (entity_id, event_timestamp, created,
fare), 3 windows (1h, 1d, 7d) x 4 functions (count, sum, mean, max of fare) = 12 columns. Events
are spread over 30 days, 100 per key; entity rows ask at random times in the same 30 days.
``default`` is 100k entity rows over 1M events at its middle size; the three sizes are 1/4, 1
and 2 times it (25k x 250k, 100k x 1M, 200k x 2M: an 8x span to judge linearity; ``small`` is
a tenth, ``large`` four times).

Rows, each timed after one untimed warm-up at the smallest size (JVM start and data generation
are outside every clock); the runs go round robin (one of each engine, then again), so a slow
spell of a shared machine slows every column alike:

- Granero, pandas: ``get_historical_features_pandas`` (``engine="auto"``), pandas in and out;
  the engine it picked by ``retrieval.local_max_rows`` is printed beside the time (in process
  at every default size: 2M rows <= 5M).
- Granero, Spark: ``get_historical_features`` on a cached Spark DataFrame of the entity rows,
  forced by a ``noop`` write (the offline table is Delta, materialized before the clock).
- Spark SQL baseline: the same 12 columns by a range join of entity rows to the source's events
  (same key, ``t - 7d <= ts <= t``), then one ``groupBy`` per entity row with conditional
  aggregates per window (exact sliding windows: no hop, so the values differ from Granero's
  sawtooth tail by design, the work does not), forced by a ``noop`` write.
- Feast 0.67: ``bench/aggregations_feast.py`` in Feast's own venv; what it returned is printed.

Prints a table (seconds, median of ``--runs``) and writes bench/out/aggregations_training-<UTC>.json.
Beside each wall time, the CPU seconds the run cost this process and its children (the JVM and
Spark's Python workers), and the load average before and after: on a shared machine the wall
times move with the load, the CPU seconds much less.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.processes import BENCH, FEAST_BIN, ROOT

WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
FUNCTIONS = ("count", "sum", "mean", "max")
EVENTS_PER_KEY = 100
DAYS = 30
END = datetime(2026, 1, 31, tzinfo=UTC)
SCALES = {"small": 100_000, "default": 1_000_000, "large": 4_000_000}
"""Events at the middle size; entity rows are a tenth of the events."""
FRACTIONS = (0.25, 1.0, 2.0)

DEFINITIONS = '''
from granero import Entity, FeatureView, Field, FileSource
from granero.definitions import Aggregation

driver = Entity(join_keys={{"entity_id": "int64"}})
trips = FeatureView(
    entities=[driver],
    source=FileSource(path="{source}", timestamp_field="event_timestamp", created_timestamp_field="created"),
    features=[Field(name="fare", dtype="float64")],
    aggregations=[{aggregations}],{hop}
)
'''
YAML = """project: bench_aggregations
registry: {{path: {root}/registry}}
offline_store: {{type: delta, path: {root}/offline}}
online_store: {{type: embedded, data_dir: {root}/online}}
spark: {{master: "local[2]", conf: {{"spark.driver.memory": "3g"}}}}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregations_training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=list(SCALES), default="default")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--hop", default=None, help="the view's hop (default: Granero's default for the windows)")
    parser.add_argument("--skip", action="append", default=[], choices=["feast", "baseline", "spark", "local"])
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def sizes(scale: str) -> list[tuple[int, int]]:
    """(entity rows, events) of the three sizes."""
    events = SCALES[scale]
    return [(int(events * f) // 10, int(events * f)) for f in FRACTIONS]


def generate(folder: Path, rows: int, events: int, seed: int) -> dict[str, str]:
    """Seeded Parquet files: the events (the view's source) and the entity rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    keys = max(1, events // EVENTS_PER_KEY)
    span = DAYS * 86_400_000_000
    start = int((END - timedelta(days=DAYS)).timestamp() * 1_000_000)
    times = start + rng.integers(0, span, events)
    event_frame = pd.DataFrame({
        "entity_id": rng.integers(0, keys, events).astype("int64"),
        "event_timestamp": pd.to_datetime(times, unit="us", utc=True),
        "created": pd.to_datetime(times + rng.integers(0, 3_600_000_000, events), unit="us", utc=True),
        "fare": np.round(rng.gamma(2.0, 8.0, events), 2),
    })
    entity_frame = pd.DataFrame({
        "entity_id": rng.integers(0, keys, rows).astype("int64"),
        "event_timestamp": pd.to_datetime(start + rng.integers(0, span, rows), unit="us", utc=True),
        "label": rng.integers(0, 2, rows),
    })
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"events": str(folder / "events"), "entities": str(folder / "entities.parquet")}
    Path(paths["events"]).mkdir(exist_ok=True)
    micro = {"coerce_timestamps": "us", "index": False}  # Spark reads nanoseconds as longs
    event_frame.to_parquet(Path(paths["events"]) / "part-0.parquet", row_group_size=131_072, **micro)
    entity_frame.to_parquet(paths["entities"], **micro)
    return paths


def write_repo(folder: Path, source: str, hop: str | None) -> Path:
    aggregations = ", ".join(
        f'Aggregation(column="fare", function="{f}", window="{w}")' for w in WINDOWS for f in FUNCTIONS
    )
    repo = folder / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    hop_line = f'\n    hop="{hop}",' if hop else ""
    (repo / "definitions.py").write_text(DEFINITIONS.format(source=source, aggregations=aggregations, hop=hop_line))
    (repo / "feature_store.yaml").write_text(YAML.format(root=folder / "store"))
    return repo


def refs() -> list[str]:
    return [f"trips:fare_{f}_{w}" for w in WINDOWS for f in FUNCTIONS]


def granero_pandas(store, entities, picked: list[str]) -> float:
    """``get_historical_features_pandas`` as a user calls it; the engine it chose goes to ``picked``."""
    began = time.perf_counter()
    frame = store.get_historical_features_pandas(entities, refs())
    elapsed = time.perf_counter() - began
    if len(frame) != len(entities):
        raise SystemExit("the pandas retrieval did not answer every row")
    picked.append(frame.attrs.get("granero_engine", "?"))
    return elapsed


def granero_spark(store, entities) -> float:
    began = time.perf_counter()
    store.get_historical_features(entities, refs()).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - began


def spark_baseline(spark, events_path: str, entities) -> float:
    """A hand-written range join: every event of the key within the largest window of t, then
    conditional aggregates per window, one group per entity row."""
    from pyspark.sql import functions as F

    events = spark.read.parquet(events_path).select("entity_id", F.col("event_timestamp").alias("ts"), "fare")
    rows = entities.withColumn("row_id", F.monotonically_increasing_id())
    largest = max(WINDOWS.values())
    joined = rows.join(
        events,
        (rows.entity_id == events.entity_id)
        & (events.ts <= rows.event_timestamp)
        & (events.ts >= rows.event_timestamp - F.expr(f"INTERVAL {int(largest.total_seconds())} SECONDS")),
        "left",
    )
    columns = []
    for label, window in WINDOWS.items():
        inside = F.when(joined.ts >= joined.event_timestamp - F.expr(f"INTERVAL {int(window.total_seconds())} SECONDS"),
                        joined.fare)
        columns += [F.count(inside).alias(f"count_{label}"), F.sum(inside).alias(f"sum_{label}"),
                    F.avg(inside).alias(f"mean_{label}"), F.max(inside).alias(f"max_{label}")]
    answer = joined.groupBy("row_id", rows.entity_id, rows.event_timestamp, "label").agg(*columns)
    began = time.perf_counter()
    answer.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - began


def feast(folder: Path, paths: dict[str, str]) -> dict:
    """Feast's attempt, in its own venv (JSON in, JSON out)."""
    python = FEAST_BIN / "python"
    if not python.exists():
        return {"error": "no Feast venv (bash bench/run.sh creates bench/.venv-feast)"}
    args = {"folder": str(folder / "feast"), **paths, "windows": {k: v.total_seconds() for k, v in WINDOWS.items()},
            "functions": list(FUNCTIONS)}
    done = subprocess.run([str(python), "-m", "bench.aggregations_feast", "historical"], input=json.dumps(args),
                          capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout)


def measure(args: argparse.Namespace, out: Path) -> dict:
    from granero.feature_store import FeatureStore

    results: dict = {"sizes": [], "hop": args.hop}
    for rows, events in sizes(args.scale):
        folder = out / f"{rows}x{events}"
        paths = generate(folder / "data", rows, events, args.seed)
        shutil.rmtree(folder / "store", ignore_errors=True)  # every run from an empty registry and table
        store = FeatureStore(write_repo(folder, paths["events"], args.hop))
        store.apply()
        began = time.perf_counter()
        store.materialize(END - timedelta(days=DAYS + 1), END + timedelta(days=1), sync_online=False)
        row = {"entity_rows": rows, "events": events, "materialize_s": time.perf_counter() - began,
               "hop_s": store.registered().feature_views["trips"].resolved_hop.total_seconds()}
        row |= measure_size(args, store, paths, warm_up=not results["sizes"])
        if "feast" not in args.skip:
            row["feast"] = feast(folder, paths)
            print(f"{rows:,} rows x {events:,} events: feast {row['feast']}", flush=True)
        results["sizes"].append(row)
    return results


def measure_size(args: argparse.Namespace, store, paths: dict[str, str], warm_up: bool) -> dict:
    """Seconds of each run of each Granero engine and of the baseline, at one size."""
    import pandas as pd

    pandas_rows = pd.read_parquet(paths["entities"])
    spark_rows = store.spark.read.parquet(paths["entities"]).cache()
    spark_rows.count()
    picked: list[str] = []
    timed = {"local": lambda: granero_pandas(store, pandas_rows, picked),
             "spark": lambda: granero_spark(store, spark_rows),
             "baseline": lambda: spark_baseline(store.spark, paths["events"], spark_rows)}
    timed = {name: run for name, run in timed.items() if name not in args.skip}
    if warm_up:
        for run in timed.values():
            run()  # JIT, Python workers, imports
    picked.clear()
    clocked: dict[str, list[tuple[float, float]]] = {name: [] for name in timed}
    for _ in range(args.runs):  # round robin: a slow spell of the machine slows every engine alike
        for name, run in timed.items():
            clocked[name].append(with_cpu(run))
    found: dict = {"pandas_engine": sorted(set(picked))} if picked else {}
    for name, runs in clocked.items():
        found[name], found[f"{name}_cpu"] = [w for w, _ in runs], [c for _, c in runs]
        engine = f" (engine {', '.join(found['pandas_engine'])})" if name == "local" and picked else ""
        print(f"{len(pandas_rows):,} rows: {name}{engine} {statistics.median(found[name]):.2f} s, "
              f"{statistics.median(found[f'{name}_cpu']):.2f} CPU-s (load {os.getloadavg()[0]:.1f})", flush=True)
    spark_rows.unpersist()
    return found


def with_cpu(run) -> tuple[float, float]:
    """``run()``'s wall seconds and the CPU seconds this process tree spent meanwhile."""
    before = tree_cpu_seconds()
    wall = run()
    return wall, tree_cpu_seconds() - before


def tree_cpu_seconds() -> float:
    """User + system CPU of this process and every descendant, with their reaped children (Linux
    /proc): the driver, the JVM and Spark's Python workers."""
    children: dict[int, list[tuple[int, list[str]]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue  # self, thread-self and the kernel's files
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or gone meanwhile
        children.setdefault(int(fields[1]), []).append((int(entry.name), fields))
    mine = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    ticks, pending = sum(int(f) for f in mine[11:15]), [os.getpid()]
    while pending:
        for pid, fields in children.get(pending.pop(), []):
            ticks += sum(int(f) for f in fields[11:15])
            pending.append(pid)
    return ticks / os.sysconf("SC_CLK_TCK")


def table(results: dict) -> str:
    lines = ["| entity rows x events | Granero pandas s (CPU-s) [engine] | Granero Spark s (CPU-s) "
             "| Spark SQL range join s (CPU-s) | baseline / pandas, / Spark | pandas s per 1M events | Feast 0.67 |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for row in results["sizes"]:
        cells = {k: statistics.median(row[k]) if k in row else None for k in row if k.split("_")[0] in ENGINES}
        feast_cell = row.get("feast", {})
        feast_text = f"{feast_cell['seconds']:.2f} s" if "seconds" in feast_cell else feast_cell.get("error", "n/a")
        timings = " | ".join(f"{_s(cells.get(k))} ({_s(cells.get(f'{k}_cpu'))})" for k in ENGINES)
        timings = timings.replace(" |", f" [{'/'.join(row.get('pandas_engine', [])) or 'n/a'}] |", 1)
        ratios = ", ".join(_ratio(cells.get("baseline"), cells.get(k)) for k in ("local", "spark"))
        per_million = _s(cells["local"] * 1e6 / row["events"]) if cells.get("local") else "n/a"
        lines.append(f"| {row['entity_rows']:,} x {row['events']:,} | {timings} | {ratios} | {per_million} "
                     f"| {feast_text} |")
    return "\n".join(lines)


ENGINES = ("local", "spark", "baseline")


def _ratio(baseline: float | None, granero: float | None) -> str:
    return f"{baseline / granero:.1f}x" if baseline and granero else "n/a"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH / "out" / f"aggregations_{args.scale}"
    results = measure(args, out)
    results["scale"], results["runs"] = args.scale, args.runs
    results["load_average_after"] = os.getloadavg()[0]
    print(table(results))
    path = BENCH / "out" / f"aggregations_training-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
