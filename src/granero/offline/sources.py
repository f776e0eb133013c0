"""Reading a feature view's batch source, and checking it has the columns the view needs.

``field_mapping`` renames source columns on read; ``timestamp_field`` and
``created_timestamp_field`` may name a column either before or after that renaming.

Parquet written by pandas (``DataFrame.to_parquet``) stores timestamps in nanoseconds, which Spark
refuses to read ("Illegal Parquet type: INT64 (TIMESTAMP(NANOS,true))"). For a local source the
Parquet footer (read with pyarrow, no data) names those columns; the session then reads them as
longs (``spark.sql.legacy.parquet.nanosAsLong``, a setting that changes nothing for files
without nanosecond columns) and each is turned back into a timestamp, floored to the
microsecond like every Granero timestamp. Naive and time-zone-aware columns alike are instants
in UTC (naive values are taken as UTC, as everywhere in Granero).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

from granero.config import resolve_path
from granero.definitions import FeatureView, FileSource, RepoDefinitions, Source
from granero.errors import MaterializationError
from granero.offline.spark_errors import spark_errors

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def describe_source(source: Source, repo_path: Path) -> str:
    if isinstance(source, FileSource):
        return f"{source.format} source {resolve_path(repo_path, source.path)}"
    return f"table source {source.table}"


def read_source(spark: SparkSession, view: FeatureView, repo_path: Path) -> DataFrame:
    """The view's source rows with ``field_mapping`` applied (lazily: nothing is scanned yet)."""
    source = view.source
    context = f"feature view {view.name!r}: cannot read {describe_source(source, repo_path)}"
    try:
        with spark_errors(MaterializationError, context):
            if isinstance(source, FileSource):
                path = resolve_path(repo_path, source.path)
                frame = read_files(spark, source.format, path, source.options)
            else:
                frame = spark.table(source.table)
    except MaterializationError as error:
        raise _with_nanosecond_hint(error) from error.__cause__
    for old, new in source.field_mapping.items():
        frame = frame.withColumnRenamed(old, new)
    return frame


def missing_source_paths(defs: RepoDefinitions, repo_path: Path) -> list[str]:
    """One warning per feature view whose local file source does not exist (yet).

    Not an error: the data may arrive after ``apply``. A URI (s3a://, abfss://...) is not checked.
    """
    warnings = []
    for view in defs.feature_views.values():
        source = view.source
        if not isinstance(source, FileSource):
            continue
        path = resolve_path(repo_path, source.path).removeprefix("file://")
        if "://" in path or glob.glob(path):
            continue
        origin = source.origin if source.origin != "<unknown>" else view.origin
        warnings.append(
            f"{origin}: feature view {view.name!r} reads {source.format} source {source.path!r}, "
            f"which does not exist ({path}); materialize fails until it does"
        )
    return warnings


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


NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
_NANOS_HINT = (
    "nanosecond timestamps (pandas' default) are read from local Parquet files only; write "
    "this source with to_parquet(..., coerce_timestamps='us', allow_truncated_timestamps=True)"
)


def read_files(spark: SparkSession, fmt: str, path: str, options: dict[str, str]) -> DataFrame:
    """Files at ``path`` as Spark reads them, nanosecond Parquet timestamps turned into timestamps."""
    nanos = nanosecond_columns(path) if fmt == "parquet" else {}
    if nanos:
        spark.conf.set(NANOS_AS_LONG, "true")  # for this session: files without nanos read alike
    frame = spark.read.format(fmt).options(**options).load(path)
    as_longs = {name: is_list for name, is_list in nanos.items() if _read_as_longs(frame, name)}
    return frame.withColumns({name: _from_nanos(name, is_list) for name, is_list in as_longs.items()})


def _read_as_longs(frame: DataFrame, name: str) -> bool:
    """Whether Spark read a nanosecond column as longs (nanosAsLong). One file's footer decides
    which columns to look at, but the files of a source may differ (some written in micros),
    and Spark merges their types: a column it typed as timestamps needs no conversion."""
    from pyspark.sql.types import ArrayType, LongType

    if name not in frame.columns:
        return False
    data_type = frame.schema[name].dataType
    element = data_type.elementType if isinstance(data_type, ArrayType) else data_type
    return isinstance(element, LongType)


def nanosecond_columns(path: str) -> dict[str, bool]:
    """Top-level columns of a local Parquet source stored as nanosecond timestamps (or lists of
    them: the value says which), from one file's footer; {} for a URI, a glob or no file."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    local = path.removeprefix("file://")
    if "://" in local or any(c in local for c in "*?[{"):
        return {}
    try:
        schema = ds.dataset(local, format="parquet", partitioning="hive").schema
    except (OSError, pa.ArrowException):
        return {}  # Spark's own read reports what is wrong
    found = {}
    for field in schema:
        is_list = pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
        scalar = field.type.value_type if is_list else field.type
        if pa.types.is_timestamp(scalar) and scalar.unit == "ns":
            found[field.name] = is_list
    return found


def _from_nanos(name: str, is_list: bool) -> Column:
    """A column of nanoseconds since the epoch (as nanosAsLong reads it) as timestamps."""
    from pyspark.sql import functions as F

    def floored_to_micros(nanos: str) -> str:
        return f"timestamp_micros(({nanos} - pmod({nanos}, 1000)) div 1000)"

    quoted = "`" + name.replace("`", "``") + "`"
    if is_list:
        return F.expr(f"transform({quoted}, n -> {floored_to_micros('n')})")
    return F.expr(floored_to_micros(quoted))


def _with_nanosecond_hint(error: MaterializationError) -> MaterializationError:
    """Spark's refusal of nanosecond timestamps it could not be spared, with how to fix it."""
    if "TIMESTAMP(NANOS" not in str(error):
        return error
    return MaterializationError(f"{error}; {_NANOS_HINT}")
