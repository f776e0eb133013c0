"""Sync the online store as a Spark job: each online view's latest offline rows, written to Redis
from the executors (write-if-newer, so re-running changes nothing).

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 spark_jobs/sync_online.py \
        --repo DIR [--views a,b]

Reads the *registered* definitions (the registry of the repo), never the repo's Python files, and
prints one JSON object: rows stored per view. Executors need the granero package and a route to
the configured Redis (the embedded store suits local masters only). Exit codes are those of the
CLI. ``main(argv)`` is also callable in-process (it reuses an active SparkSession).
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sync_online.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="feature repo folder")
    parser.add_argument("--views", help="comma-separated views (default: every online view)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, int]:
    config = load_config(args.repo.resolve())
    get_job_spark(config.spark)  # under spark-submit, the submit's master wins
    views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else None
    with FeatureStore(args.repo, config=config) as store:
        return store.sync_online(views)


def main(argv: list[str] | None = None) -> int:
    return run_job(lambda: [json.dumps(run(parse_args(argv)))])


if __name__ == "__main__":
    sys.exit(main())
