"""A view's entities and their values as of one moment, read in process (Arrow, no Spark).

What ``granero verify`` compares the online store with, for tables small enough to read whole
on this machine: every distinct entity key of the table, and the training value of each at
``now``, given by the same in-process join training retrieval uses (``as_of_join_arrow``).
Also what ``granero sync`` writes for such tables: each entity's latest row
(``latest_rows_arrow``), the rule Spark's ``retrieval.latest_rows`` applies.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from granero.offline.as_of_join import AsOfSpec
from granero.offline.local_as_of import as_of_join_arrow, key_codes, micros
from granero.offline.retrieval import day_range
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from granero.offline.tables import read_view_arrow

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from granero.definitions import FeatureView, RepoDefinitions
    from granero.offline.tables import OfflineStore
    from granero.registry.intervals import Interval

EVERY_DAY = (date.min, date.max)


def view_entities(
    store: OfflineStore, defs: RepoDefinitions, view: FeatureView, max_rows: int
) -> pa.Table | None:
    """The table's distinct entity keys, sorted; None when the table is not on a local file
    system or holds more than ``max_rows`` rows (Spark should read it then)."""
    if not store.local:
        return None
    if store.exists(view.name) and store.count_rows(view.name, None, *EVERY_DAY) > max_rows:
        return None
    keys = list(defs.join_keys(view))
    rows = read_view_arrow(store, defs, view, None, keys, EVERY_DAY)  # names a missing table
    return rows.group_by(keys).aggregate([]).select(keys).sort_by([(k, "ascending") for k in keys])


def values_as_of(
    store: OfflineStore,
    defs: RepoDefinitions,
    view: FeatureView,
    entities: pa.Table,
    now: datetime,
) -> pa.Table:
    """``entities`` (join key columns) plus ``<view>__<feature>`` columns: each entity's training
    values at ``now``, nulls where it has no row within the ttl (an aggregate view: each of its
    aggregates at ``now``, by ``aggregation.engine.aggregate_as_of``)."""
    import pyarrow as pa

    keys = defs.join_keys(view)
    moment = pa.array([now] * entities.num_rows, pa.timestamp("us", tz="UTC"))
    asked = entities.append_column(EVENT_TIMESTAMP, moment)
    days = day_range(asked[EVENT_TIMESTAMP], view.ttl)
    columns = [*keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *view.feature_names]
    table = read_view_arrow(store, defs, view, None, columns, days)
    if view.is_aggregate:  # ttl is the span of events a window reads
        return _aggregates_as_of(defs, view, asked, table)
    outputs = {f: f"{view.name}__{f}" for f in view.feature_names}
    return as_of_join_arrow(asked, table, AsOfSpec(keys, view.ttl, outputs))


def _aggregates_as_of(defs: RepoDefinitions, view: FeatureView, asked: pa.Table, events: pa.Table) -> pa.Table:
    """``asked`` plus ``<view>__<aggregate>`` columns: the training aggregates at each row's time."""
    from granero.aggregation.engine import aggregate_as_of
    from granero.aggregation.spec import aggregation_spec

    joined = aggregate_as_of(asked, events, aggregation_spec(defs, view))
    names = {name: f"{view.name}__{name}" for name in view.output_names}
    return joined.rename_columns([names.get(c, c) for c in joined.column_names])


def latest_rows_arrow(
    store: OfflineStore, defs: RepoDefinitions, view: FeatureView, interval: Interval | None,
    max_rows: int,
) -> pa.Table | None:
    """Per entity key, the table row with the greatest (event_timestamp, created_timestamp) (a
    null created lowest), among rows with event_timestamp in ``interval`` when given; rows with
    a null key are dropped (they cannot be looked up). None when the table is not local or the
    days to read hold more than ``max_rows`` rows: Spark answers then."""
    import pyarrow.compute as pc

    days = EVERY_DAY if interval is None else _days_of(interval)
    if not store.local or max_rows == 0:
        return None
    if store.exists(view.name) and store.count_rows(view.name, None, *days) > max_rows:
        return None
    keys = list(defs.join_keys(view))
    columns = [*keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *view.feature_names]
    table = read_view_arrow(store, defs, view, None, columns, days)
    if interval is not None:
        event = table[EVENT_TIMESTAMP]
        table = table.filter(pc.and_(pc.greater_equal(event, interval.start), pc.less(event, interval.end)))
    return table.take(_latest_per_key(table, keys, [defs.join_keys(view)[k] for k in keys]))


def _latest_per_key(table: pa.Table, keys: list[str], dtypes: list[str]) -> np.ndarray:
    """Row indices of the last row per typed key in (event, created) order; null keys skipped."""
    import numpy as np

    columns = [table[k] for k in keys]
    _, codes = key_codes([c.slice(0, 0) for c in columns], columns, dtypes)
    event, _ = micros(table[EVENT_TIMESTAMP])
    created, created_valid = micros(table[CREATED_TIMESTAMP])
    created = np.where(created_valid, created, np.iinfo(np.int64).min)
    order = np.lexsort((created, event, codes))  # the last key sorts first
    order = order[codes[order] >= 0]
    sorted_codes = codes[order]
    last = np.append(sorted_codes[1:] != sorted_codes[:-1], True) if len(order) else order.astype(bool)
    return order[last]


def _days_of(interval: Interval) -> tuple[date, date]:
    """The UTC days the half-open window touches."""
    last = (interval.end - timedelta(microseconds=1)).astimezone(UTC).date()
    return interval.start.astimezone(UTC).date(), last
