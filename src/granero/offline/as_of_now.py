"""A view's entities and their values as of one moment, read in process (Arrow, no Spark).

What ``granero verify`` compares the online store with, for tables small enough to read whole
on this machine: every distinct entity key of the table, and the training value of each at
``now``, given by the same in-process join training retrieval uses (``as_of_join_arrow``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from granero.offline.as_of_join import AsOfSpec
from granero.offline.local_as_of import as_of_join_arrow
from granero.offline.retrieval import day_range
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from granero.offline.tables import read_view_arrow

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.definitions import FeatureView, RepoDefinitions
    from granero.offline.tables import OfflineStore

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
    values at ``now``, nulls where it has no row within the ttl."""
    import pyarrow as pa

    keys = defs.join_keys(view)
    moment = pa.array([now] * entities.num_rows, pa.timestamp("us", tz="UTC"))
    asked = entities.append_column(EVENT_TIMESTAMP, moment)
    days = day_range(asked[EVENT_TIMESTAMP], view.ttl)
    columns = [*keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *view.feature_names]
    table = read_view_arrow(store, defs, view, None, columns, days)
    outputs = {f: f"{view.name}__{f}" for f in view.feature_names}
    return as_of_join_arrow(asked, table, AsOfSpec(keys, view.ttl, outputs))
