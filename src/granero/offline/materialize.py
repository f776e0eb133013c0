"""Materialization: rebuild one window [start, end) of a view's offline table from its source.

The pipeline is one lazy Spark plan, written by the backend in one atomic step:

    read source → field_mapping → event time in [start, end) → filter → transformations
    → convert to declared dtypes (offline.casts: exact, or checked value by value, never lossy)
    → ∪ the window's landed rows (pushed or streamed: offline.landing)
    → drop rows without keys or event time → drop full ties (plain views) → event_date

Full ties (same keys, event_timestamp and created_timestamp) keep one row: the one whose feature
values, compared in declared feature order with nulls lowest, are greatest. So a plain view's
table never holds full ties, and readers order by (event_timestamp, created_timestamp) alone.
An aggregate view's table is its events, one row each (its features are the event columns its
aggregations read): two events with the same keys and times are two events, and both count, so
nothing is dropped there. Nothing is collected to the driver and no Python runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from granero.definitions import FeatureView, RepoDefinitions
from granero.errors import InvalidRequest, MaterializationError, NotFound
from granero.offline.landed_append import caught_up
from granero.offline.landing import landing_location, read_landed
from granero.offline.schema import (
    CREATED_TIMESTAMP,
    EVENT_DATE,
    EVENT_TIMESTAMP,
    conform,
    partition_columns,
    table_dtypes,
    utc_date,
)
from granero.offline.sources import check_source_columns, describe_source, mapped, read_source
from granero.offline.spark_casts import converted, refusals
from granero.offline.spark_errors import spark_errors
from granero.offline.write_transform import with_write_transform
from granero.registry import Interval

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from granero.offline.tables import OfflineStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Where an incremental run starts for a view that was never materialized."""


@dataclass(frozen=True)
class MaterializationResult:
    """One view's window, written: rows now in [start, end), and the table version (Delta).

    ``start == end`` (and no rows) when the offline table was up to date and the run only synced
    windows left pending online by an earlier run.
    """

    view: str
    start: datetime
    end: datetime
    rows_written: int
    table_version: int | None
    asked_end: datetime | None = None
    """The end asked for, when it was after now and ``end`` was capped at now."""
    online_rows: int | None = None
    """Rows the sync stored online (None: not synced); see ``synced``."""
    synced: tuple[Interval, ...] = ()
    """The windows synced online: this one and any an earlier failed sync left pending."""
    reason: str | None = None
    """Why an incremental run wrote this window (new event times, late rows...); None otherwise."""


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant (``Z`` or an offset allowed); naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{text!r} is not an ISO 8601 time such as 2026-01-07T00:00:00Z"
        ) from None
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window(start: datetime, end: datetime) -> Interval:
    """The half-open interval [start, end), refused unless end is after start."""
    try:
        return Interval(start=start, end=end)
    except ValidationError:
        raise InvalidRequest(f"materialization end {end} must be after start {start}") from None


def capped_end(end: datetime, now: datetime | None) -> tuple[datetime, datetime | None]:
    """``end``, or ``now`` when ``end`` is later (then also the ``end`` asked for).

    Windows stop at now: Redis keeps one row per entity, so a row stamped after now, once synced,
    would hide the row a lookup at now must serve (training at now excludes it). The capped part
    is materialized by a later run, once its time has come.
    """
    end, moment = as_utc(end), as_utc(now or datetime.now(UTC))
    return (moment, end) if end > moment else (end, None)


def capped_window(start: datetime, end: datetime, now: datetime | None) -> tuple[Interval, datetime | None]:
    """``window(start, end)`` with ``end`` capped at now (``capped_end``); InvalidRequest when
    the window starts at or after now."""
    finish, asked = capped_end(end, now)
    if asked is not None and as_utc(start) >= finish:
        raise InvalidRequest(
            f"materialization window starts at {as_utc(start).isoformat()}, not before now "
            f"({finish.isoformat()}): rows stamped in the future are materialized once their "
            "time has come"
        )
    return window(start, finish), asked


def incremental_start(intervals: list[Interval]) -> datetime:
    """Continue from the end of the last materialized interval (the epoch when there is none)."""
    return max((i.end for i in intervals), default=EPOCH)


def select_views(defs: RepoDefinitions, names: list[str] | None) -> list[FeatureView]:
    """The named views (all of them when ``names`` is None), in the order given."""
    if names is None:
        return list(defs.feature_views.values())
    unknown = [n for n in names if n not in defs.feature_views]
    if unknown:
        raise NotFound(
            f"no feature view named {', '.join(map(repr, unknown))}; "
            f"known: {sorted(defs.feature_views)}"
        )
    return [defs.feature_views[n] for n in names]


def materialize_view(
    spark: SparkSession,
    store: OfflineStore,
    defs: RepoDefinitions,
    view: FeatureView,
    interval: Interval,
    repo_path: Path,
) -> MaterializationResult:
    """Replace the view's rows in [start, end) by what its source holds now; atomic per backend."""
    source = with_write_transform(read_source(spark, view, repo_path), view)
    check_source_columns(source, defs, view, repo_path)
    check_expressions(source, view)
    check_casts(source, defs, view, repo_path)
    context = (
        f"materializing feature view {view.name!r} from {describe_source(view.source, repo_path)}"
    )
    location = landing_location(str(store.path))
    with spark_errors(MaterializationError, context), caught_up(store, defs, view, location):
        landed = read_landed(spark, location, view.name, interval)
        rows = table_rows(source, defs, view, interval, landed)
        written = store.write_window(view.name, rows, interval, partition_columns(view))
    return MaterializationResult(
        view.name, interval.start, interval.end, written.rows_written, written.table_version
    )


def table_rows(
    source: DataFrame, defs: RepoDefinitions, view: FeatureView, interval: Interval,
    landed: DataFrame | None = None,
) -> DataFrame:
    """Source rows of the window turned into offline-table rows (pure: a lazy plan), with the
    window's ``landed`` rows (pushed or streamed, already in table form: the view's filter and
    transformations are not applied to them again) before full ties are dropped."""
    dated = dated_rows(source, defs, view, interval, landed)
    if view.is_aggregate:  # events: every one counts, full ties included
        return dated
    return without_full_ties(dated, defs, view)


def dated_rows(
    source: DataFrame, defs: RepoDefinitions, view: FeatureView, interval: Interval,
    landed: DataFrame | None = None,
) -> DataFrame:
    """``table_rows`` before full ties are dropped: row by row only (filter, transformations,
    casts, rows without a key or event time left out), so a streaming query can run it too."""
    from pyspark.sql import functions as F

    columns = typed_columns(source, defs, view)
    in_window = source.where(inside(columns[EVENT_TIMESTAMP], interval))
    if view.filter:
        in_window = in_window.where(F.expr(view.filter))
    typed = in_window.select(*[column.alias(name) for name, column in columns.items()])
    if landed is not None:
        typed = typed.unionByName(conform(landed, typed.schema))
    present = typed.dropna(subset=required_columns(defs, view))
    return present.withColumn(EVENT_DATE, utc_date(F.col(EVENT_TIMESTAMP)))


def inside(event: Column, interval: Interval) -> Column:
    """Whether a typed event time lies in ``interval`` (start included, end not): the window of
    a materialization, and of a stream (all time since the epoch)."""
    from pyspark.sql import functions as F

    return (event >= F.lit(interval.start)) & (event < F.lit(interval.end))


def required_columns(defs: RepoDefinitions, view: FeatureView) -> list[str]:
    """The typed columns a table row cannot lack (a row with a null one is left out)."""
    return [*defs.join_keys(view), EVENT_TIMESTAMP]


def without_full_ties(dated: DataFrame, defs: RepoDefinitions, view: FeatureView) -> DataFrame:
    """A plain view's ``dated_rows`` with one row per full tie (``drop_full_ties``)."""
    return drop_full_ties(dated, [EVENT_DATE, *defs.join_keys(view)], view.feature_names)


def typed_columns(source: DataFrame, defs: RepoDefinitions, view: FeatureView) -> dict[str, Column]:
    """Keys, timestamps and features, each converted to its table type by the one cast rule
    (``offline.casts``): exact casts plain, others checked value by value in the job."""
    inputs = source_inputs(defs, view)
    types = input_types(source, inputs)
    dtypes = dict(table_dtypes(defs, view))
    return {
        name: converted(column, types[name], dtypes[name], column_label(view, name))
        for name, column in inputs.items()
    }


def source_inputs(defs: RepoDefinitions, view: FeatureView) -> dict[str, Column]:
    """Each table column (but ``event_date``) as read from the source, before any cast."""
    from pyspark.sql import functions as F

    source = view.source
    created = mapped(source, source.created_timestamp_field)
    inputs = {
        EVENT_TIMESTAMP: F.col(f"`{mapped(source, source.timestamp_field)}`"),
        CREATED_TIMESTAMP: F.col(f"`{created}`") if created else F.lit(None),
    }
    for feature in view.feature_names:
        expression = view.transformations.get(feature)
        inputs[feature] = F.expr(expression) if expression else F.col(f"`{feature}`")
    return {name: inputs.get(name, F.col(f"`{name}`")) for name, _ in table_dtypes(defs, view)}


def input_types(source: DataFrame, inputs: dict[str, Column]) -> dict[str, str]:
    """Spark's type of each input, by analysis only (no job runs)."""
    schema = source.select(*[column.alias(name) for name, column in inputs.items()]).schema
    return {field.name: field.dataType.simpleString() for field in schema.fields}


def column_label(view: FeatureView, name: str) -> str:
    """Where a table column comes from, for messages: the source column or the transformation."""
    source = view.source
    if name in view.transformations:
        return f"feature view {view.name!r} transformations[{name!r}]"
    given = {EVENT_TIMESTAMP: source.timestamp_field, CREATED_TIMESTAMP: source.created_timestamp_field}
    renamed = {new: old for old, new in source.field_mapping.items()}
    column = given.get(name) or renamed.get(name, name)
    shown = f"column {column!r}" if column == name else f"column {column!r} (as {name!r})"
    return f"feature view {view.name!r} {shown}"


def check_casts(source: DataFrame, defs: RepoDefinitions, view: FeatureView, repo_path: Path) -> None:
    """Refuse, before any job, a column whose source type cannot become its declared dtype."""
    inputs = source_inputs(defs, view)
    dtypes = dict(table_dtypes(defs, view))
    types = input_types(source, inputs)
    lines = refusals(
        {column_label(view, n): t for n, t in types.items()}, {column_label(view, n): d for n, d in dtypes.items()}
    )
    if lines:
        raise MaterializationError(
            f"{describe_source(view.source, repo_path)} cannot be materialized: "
            + "; ".join(lines)
        )


def check_expressions(source: DataFrame, view: FeatureView) -> None:
    """Analyse the filter and every transformation against the source (no job runs)."""
    from pyspark.sql import functions as F

    named = {"filter": view.filter} if view.filter else {}
    named |= {f"transformations[{k!r}]": v for k, v in view.transformations.items()}
    for field, sql in named.items():
        with spark_errors(MaterializationError, f"feature view {view.name!r} {field} {sql!r}"):
            source.select(F.expr(sql)).schema  # noqa: B018 -- analysis happens on schema access


def drop_full_ties(rows: DataFrame, keys: list[str], features: list[str]) -> DataFrame:
    """One row per (keys, event_timestamp, created_timestamp).

    The kept row is the greatest by feature values in declared order, nulls lowest. Leading
    ``keys`` with ``event_date`` (a function of event_timestamp, so the groups are the same) leaves
    the rows sorted by day: the partitioned table write then needs no sort of its own.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    tie = Window.partitionBy(*keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP).orderBy(
        *[F.col(f"`{f}`").desc_nulls_last() for f in features]
    )
    rank = "__granero_tie_rank"
    return rows.withColumn(rank, F.row_number().over(tie)).where(F.col(rank) == 1).drop(rank)
