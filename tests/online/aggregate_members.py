"""Writing an aggregate view's members from events for read-side tests, through the sync's own
writer (``online.aggregate_sync.AggregateWriter``: suffix values, one Lua call per entity)."""

from __future__ import annotations

import pyarrow as pa

from granero.aggregation.spec import aggregation_spec
from granero.online.aggregate_sync import AggregateWriter


def write_events(store, defs, view, events: pa.Table) -> int:
    """Every entity of ``events`` recomputed from them and rewritten whole (unless Redis holds a
    newer write stamp); returns how many entities were stored."""
    writer = AggregateWriter(store.settings, store.project, view.name, aggregation_spec(defs, view))
    return writer.write(store, events)
