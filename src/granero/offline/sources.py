"""Reading a feature view's batch source, and checking it has the columns the view needs.

``field_mapping`` renames source columns on read; ``timestamp_field`` and
``created_timestamp_field`` may name a column either before or after that renaming.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from granero.config import resolve_path
from granero.definitions import FeatureView, FileSource, RepoDefinitions, Source
from granero.errors import MaterializationError
from granero.offline.spark_errors import spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def describe_source(source: Source, repo_path: Path) -> str:
    if isinstance(source, FileSource):
        return f"{source.format} source {resolve_path(repo_path, source.path)}"
    return f"table source {source.table}"


def read_source(spark: SparkSession, view: FeatureView, repo_path: Path) -> DataFrame:
    """The view's source rows with ``field_mapping`` applied (lazily: nothing is scanned yet)."""
    source = view.source
    with spark_errors(
        MaterializationError,
        f"feature view {view.name!r}: cannot read {describe_source(source, repo_path)}",
    ):
        if isinstance(source, FileSource):
            frame = (
                spark.read.format(source.format)
                .options(**source.options)
                .load(resolve_path(repo_path, source.path))
            )
        else:
            frame = spark.table(source.table)
    for old, new in source.field_mapping.items():
        frame = frame.withColumnRenamed(old, new)
    return frame


def mapped(source: Source, column: str | None) -> str | None:
    """The name a source column has after ``field_mapping``."""
    return None if column is None else source.field_mapping.get(column, column)


def required_columns(defs: RepoDefinitions, view: FeatureView) -> list[str]:
    """Columns the source must have: timestamps, join keys, features no transformation computes."""
    source = view.source
    stamps = [
        mapped(source, source.timestamp_field),
        mapped(source, source.created_timestamp_field),
    ]
    features = [f for f in view.feature_names if f not in view.transformations]
    return [c for c in [*stamps, *defs.join_keys(view), *features] if c is not None]


def check_source_columns(
    frame: DataFrame, defs: RepoDefinitions, view: FeatureView, repo_path: Path
) -> None:
    """Fail before any work when the source lacks a column the view needs."""
    present = set(frame.columns)
    missing = [c for c in required_columns(defs, view) if c not in present]
    if missing:
        raise MaterializationError(
            f"feature view {view.name!r}: {describe_source(view.source, repo_path)} has no column "
            f"{', '.join(map(repr, missing))}; it has {sorted(present)}"
        )
