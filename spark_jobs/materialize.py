"""Materialize feature views as a Spark job (local, standalone, YARN or Kubernetes alike).

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 spark_jobs/materialize.py \
        --repo DIR --start ISO --end ISO [--views a,b] [--no-sync]
    spark-submit ... spark_jobs/materialize.py --repo DIR --incremental [--end ISO]

Reads the *registered* definitions (the registry of the repo), never the repo's Python files, and
prints one JSON line per materialized view (a window's end is capped at now, ``capped_from``
then says the end asked; ``synced`` lists the windows synced online, any an earlier failed sync
left pending included). Exit codes are those of the CLI. ``main(argv)`` is
also callable in-process (it reuses an active SparkSession).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from granero.config import load_config
from granero.feature_store import FeatureStore
from granero.jobs import run_job
from granero.offline.materialize import parse_time
from granero.offline.spark_session import get_job_spark


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="materialize.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="feature repo folder")
    parser.add_argument("--start", type=parse_time, help="window start (ISO 8601)")
    parser.add_argument(
        "--end", type=parse_time, help="window end, exclusive (incremental default: now)"
    )
    parser.add_argument("--views", help="comma-separated feature views (default: all)")
    parser.add_argument(
        "--incremental", action="store_true", help="continue each view where it ended"
    )
    parser.add_argument("--no-sync", action="store_true", help="do not sync the online store")
    args = parser.parse_args(argv)
    if not args.incremental and (args.start is None or args.end is None):
        parser.error("--start and --end are required unless --incremental")
    return args


def run(args: argparse.Namespace) -> list[dict]:
    config = load_config(args.repo.resolve())
    get_job_spark(config.spark)
    views = [v.strip() for v in args.views.split(",")] if args.views else None
    with FeatureStore(args.repo, config=config) as store:
        if args.incremental:
            end = args.end or datetime.now(UTC)
            results = store.materialize_incremental(end, views, sync_online=not args.no_sync)
        else:
            results = store.materialize(args.start, args.end, views, sync_online=not args.no_sync)
    return [
        {
            "view": r.view,
            "start": r.start.isoformat(),
            "end": r.end.isoformat(),
            "rows_written": r.rows_written,
            "table_version": r.table_version,
            "capped_from": r.asked_end and r.asked_end.isoformat(),
            "online_rows": r.online_rows,
            "synced": [[w.start.isoformat(), w.end.isoformat()] for w in r.synced],
        }
        for r in results
    ]


def main(argv: list[str] | None = None) -> int:
    return run_job(lambda: [json.dumps(line) for line in run(parse_args(argv))])


if __name__ == "__main__":
    sys.exit(main())
