"""Build a training set as a Spark job, from the registered definitions.

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 spark_jobs/historical.py \
        --repo DIR --entities PATH (--features v:f,v:g | --service NAME) --out PATH \
        [--format parquet|csv] [--plain-names] [--overwrite] [--table-versions view=N,...]

Writes the training set to ``--out`` and its manifest to ``<out>.manifest.json``; prints the
manifest. ``main(argv)`` is also callable in-process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from granero.config import load_config
from granero.feature_store import FeatureStore
from granero.jobs import run_job
from granero.offline.retrieval import TrainingManifest, write_training_set
from granero.offline.spark_session import get_job_spark


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="historical.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="feature repo folder")
    parser.add_argument("--entities", required=True, help="entity rows: Parquet, CSV or Delta path")
    requested = parser.add_mutually_exclusive_group(required=True)
    requested.add_argument("--features", help="comma-separated view:feature references")
    requested.add_argument("--service", help="a feature service name")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--plain-names", action="store_true", help="bare feature names as columns")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--table-versions", default="", help="view=N,... to rebuild an old training set"
    )
    return parser.parse_args(argv)


def _versions(text: str) -> dict[str, int]:
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {view.strip(): int(version) for view, version in pairs}


def run(args: argparse.Namespace) -> TrainingManifest:
    config = load_config(args.repo.resolve())
    get_job_spark(config.spark)
    features = [f.strip() for f in args.features.split(",")] if args.features else None
    manifest_path = f"{args.out.rstrip('/')}.manifest.json"
    with FeatureStore(args.repo, config=config) as store:
        frame = store.get_historical_features(
            args.entities,
            features,
            args.service,
            full_feature_names=not args.plain_names,
            table_versions=_versions(args.table_versions) or None,
            manifest_path=manifest_path,
        )
        write_training_set(frame, args.out, args.format, args.overwrite)
    return TrainingManifest.read(manifest_path)


def main(argv: list[str] | None = None) -> int:
    return run_job(lambda: [run(parse_args(argv)).to_json()])


if __name__ == "__main__":
    sys.exit(main())
