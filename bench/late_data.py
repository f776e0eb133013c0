"""Late data: an incremental run that picks up late rows, next to a full re-materialization.

    .venv/bin/python -m bench.late_data [--entities 10000] [--days 30] [--late 1000] [--runs 2]
    (or: bash bench/run.sh late-data ...)

A Delta source holds one row per entity and day over ``--days`` days; it is materialized once
(incremental, from nothing) into a Delta offline table and synced to a private redis-server.
Then, per run, ``--late`` rows are appended with event times inside one day already materialized
(a late delivery), and the same data is brought up to date two ways, each timed end to end
(planning, table write, Redis sync), printed side by side:

- **incremental**: ``materialize_incremental`` (reads the source's new Delta commits, rewrites
  the one day they touched, syncs it);
- **full**: ``materialize`` of the whole materialized window, what one has to run to be safe
  without late-data tracking.

Both end with the same table (checked: row counts equal the source's). Local Spark ``local[2]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.redis_server import private_redis

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.late_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--late", type=int, default=1_000, help="late rows appended per run")
    parser.add_argument("--runs", type=int, default=2)
    return parser.parse_args(argv)


def write_repo(root: Path, port: int) -> None:
    (root / "feature_store.yaml").write_text(
        "project: late_bench\nregistry: {path: registry}\noffline_store: {type: delta, path: offline}\n"
        f"online_store: {{type: redis, url: 'redis://127.0.0.1:{port}/0', expire_keys: false}}\n"
        "spark: {master: 'local[2]', conf: {spark.sql.shuffle.partitions: '4'}}\n"
    )
    (root / "repo.py").write_text(
        "from granero import Entity, FeatureView, Field, FileSource\n"
        "rider = Entity(join_keys={'rider_id': 'int64'})\n"
        "scores = FeatureView(entities=[rider], ttl='60d', features=[Field(name='score', dtype='float64')],\n"
        "    source=FileSource(path='source', format='delta', timestamp_field='ts'))\n"
    )


def append(spark, source: Path, riders: range, day: datetime, salt: float, late: float = 0.0) -> None:
    """One Delta commit: a row per rider, stamped within ``day`` (``late`` seconds after the
    rider's regular time there, so late rows are new rows, not ties)."""
    from pyspark.sql import functions as F

    seconds = int(day.timestamp())
    frame = spark.range(riders.start, riders.stop).select(
        F.col("id").alias("rider_id"),
        F.timestamp_seconds(F.lit(seconds) + F.col("id") % 86_000 + F.lit(late)).alias("ts"),
        (F.col("id") * 0.5 + F.lit(salt)).alias("score"),
    )
    frame.write.format("delta").mode("append").save(str(source))


def timed(step) -> tuple[float, object]:
    began = time.perf_counter()
    result = step()
    return time.perf_counter() - began, result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from granero.feature_store import FeatureStore

    with tempfile.TemporaryDirectory(prefix="granero-late-") as folder, private_redis(Path(folder) / "redis") as port:
        root = Path(folder)
        write_repo(root, port)
        store = FeatureStore(root)
        store.apply()
        source, end = root / "source", START + args.days * DAY
        for day in range(args.days):
            append(store.spark, source, range(args.entities), START + day * DAY, float(day))
        first, _ = timed(lambda: store.materialize_incremental(end))
        print(f"initial incremental run: {args.days * args.entities:,} rows in {first:.1f} s")
        incremental, full = [], []
        for run in range(args.runs):
            late_day = START + (args.days // 2 + run) * DAY
            append(store.spark, source, range(args.late), late_day, 1_000.0 + run, late=0.5 + run)
            seconds, results = timed(lambda: store.materialize_incremental(end))
            incremental.append(seconds)
            windows = [f"{r.start:%m-%d}..{r.end:%m-%d} ({r.reason})" for r in results]
            print(f"run {run + 1}: incremental {seconds:.1f} s, rewrote {'; '.join(windows)}")
            seconds, _ = timed(lambda: store.materialize(START, end))
            full.append(seconds)
            print(f"run {run + 1}: full re-materialization of the same data {seconds:.1f} s")
        rows = store.offline_store.read("scores").count()
        expected = args.days * args.entities + args.runs * args.late
        print_table(args, incremental, full, rows == expected)
        store.close()


def print_table(args: argparse.Namespace, incremental: list[float], full: list[float], same: bool) -> None:
    inc, whole = statistics.median(incremental), statistics.median(full)
    print(f"\n| late rows ({args.late:,}) into {args.days} days x {args.entities:,} entities | seconds (median of "
          f"{args.runs}) | speed-up vs full |")
    print("|---|---:|---:|")
    print(f"| incremental run (Delta commits since the last run; 1 day rewritten + synced) | {inc:.1f} | "
          f"{whole / inc:.1f}x |")
    print(f"| full re-materialization of the {args.days}-day window + sync | {whole:.1f} | 1.0x |")
    print(f"\ntable rows equal to the source's: {same}")


if __name__ == "__main__":
    main()
