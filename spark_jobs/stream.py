"""Stream feature views from their stream sources as a Spark job (one query per view), until stopped.

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1,\
org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0,org.apache.spark:spark-avro_2.13:4.0.0 \
        spark_jobs/stream.py --repo DIR [--views a,b] [--available-now] [--queries all|online|durable]

Reads the *registered* definitions. Each micro-batch is written online (write-if-newer), landed,
and appended to the offline table exactly once across restarts (granero.streaming). Prints one
JSON object when the queries stop: batches, rows and dead letters per view. Exit codes are those
of the CLI. ``main(argv)`` is also callable in-process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from granero.config import load_config
from granero.feature_store import FeatureStore
from granero.jobs import run_job
from granero.offline.spark_session import get_job_spark
from granero.streaming.config import QueryKind
from granero.streaming.job import run_streams


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stream.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="feature repo folder")
    parser.add_argument("--views", help="comma-separated views (default: every view with a stream_source)")
    parser.add_argument("--available-now", action="store_true", help="write what is there, then stop")
    parser.add_argument("--queries", choices=list(QueryKind), default="all",
                        help="online or durable queries only (granero.streaming.config.QueryKind)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    config = load_config(args.repo.resolve())
    get_job_spark(config.spark, streaming=True)  # under spark-submit, the submit's master wins
    views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else None
    with FeatureStore(args.repo, config=config) as store:
        return run_streams(store, views, args.available_now, QueryKind(args.queries))


def main(argv: list[str] | None = None) -> int:
    return run_job(lambda: [json.dumps(run(parse_args(argv)))])


if __name__ == "__main__":
    sys.exit(main())
