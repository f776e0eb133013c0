"""A push, in order: validate everything, land the rows (offline, durable), write them online.

    validate (push.validation)      refused -> nothing written anywhere
    land (offline.landing)          one Parquet file, idempotent by batch id
    online, write-if-newer          plain views: online.sync.write_table; aggregate views: the
                                    touched entities recomputed from their events
    freshness                       recorded by the online writers themselves

Landing first means an accepted push is never lost: if the online write then fails, the error
reaches the caller, the rows are already durable and the next materialization of their window
brings them online; a retry with the same batch id lands nothing twice and writes online again.
A batch id defaults to a hash of the view and the validated rows, so resending the same rows is
harmless even without one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from granero.errors import InvalidRequest
from granero.offline.landing import read_landed_arrow, write_landed
from granero.push.rows import Pushable, as_table
from granero.push.validation import validated

if TYPE_CHECKING:
    import pyarrow as pa

    from granero.definitions import FeatureView, RepoDefinitions
    from granero.offline.tables import OfflineStore
    from granero.online.redis import RedisStore

Target = Literal["online_and_offline", "online", "offline"]
TARGETS: tuple[Target, ...] = ("online_and_offline", "online", "offline")


@dataclass(frozen=True)
class PushResult:
    view: str
    rows: int
    """Rows accepted (validated, then landed and/or offered online)."""
    online_rows: int
    """Online values stored: write-if-newer skips rows older than what Redis holds; for an
    aggregate view, entities recomputed."""
    batch_id: str
    landed: bool


@dataclass(frozen=True)
class PushTarget:
    """Where a push writes: the landing folder and the online store (built on first use)."""

    landing: str
    online: RedisStore | None
    offline: OfflineStore | None = None
    local_max_rows: int = 0
    """Aggregate views: their offline events are read in process up to this many rows."""


def push_rows(
    defs: RepoDefinitions, view: FeatureView, rows: Pushable, target: PushTarget, *,
    to: str = "online_and_offline", batch_id: str | None = None, max_rows: int | None = None,
) -> PushResult:
    """Validate ``rows`` against ``view``, land them unless ``to="online"``, then write them
    online unless ``to="offline"`` (online views only)."""
    online = _check_target(view, to)
    table = validated(defs, view, _bounded(as_table(rows, view.name), view, max_rows))
    batch = batch_id or content_batch_id(view.name, table)
    landed = to != "online" and table.num_rows > 0
    if landed:
        write_landed(target.landing, view.name, table, batch)
    stored = _write_online(defs, view, table, target, landed) if online and table.num_rows else 0
    return PushResult(view.name, table.num_rows, stored, batch, landed)


def content_batch_id(view: str, table: pa.Table) -> str:
    """The batch id of rows pushed without one: the same view and rows give the same id."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    digest = hashlib.sha256(view.encode() + b"\0" + sink.getvalue().to_pybytes())
    return f"rows-{digest.hexdigest()[:40]}"


def _check_target(view: FeatureView, to: str) -> bool:
    """Whether to write online; InvalidRequest for an unknown target or ``online`` on a view
    that is not served online."""
    if to not in TARGETS:
        raise InvalidRequest(f"push to feature view {view.name!r}: to must be one of {TARGETS}, "
                             f"not {to!r}")
    if to == "online" and not view.online:
        raise InvalidRequest(f"push to feature view {view.name!r}: the view is not served "
                             "online (online=False); push to 'offline'")
    return to != "offline" and view.online


def _bounded(table: pa.Table, view: FeatureView, max_rows: int | None) -> pa.Table:
    if max_rows is not None and table.num_rows > max_rows:
        raise InvalidRequest(f"push to feature view {view.name!r}: {table.num_rows} rows exceed "
                             f"serving.limits.max_push_rows {max_rows}; split the push")
    return table


def _write_online(defs: RepoDefinitions, view: FeatureView, table: pa.Table, target: PushTarget,
                  landed: bool) -> int:
    from granero.online.sync import write_table

    if target.online is None:
        return 0
    if view.is_aggregate:
        return _write_aggregates(defs, view, table, target, landed)
    return write_table(target.online, view, defs.join_keys(view), table)


def _write_aggregates(defs: RepoDefinitions, view: FeatureView, table: pa.Table, target: PushTarget,
                      landed: bool) -> int:
    """Recompute the pushed entities from all their events: the offline table's and the landed
    ones (a landed row also in the table counts as many times as the larger of the two holds
    it, so a materialized push is not counted twice). Needs a local offline table of at most
    ``local_max_rows`` rows; otherwise the pushed events come online with the next sync."""
    import pyarrow as pa

    from granero.aggregation.spec import aggregation_spec
    from granero.online.aggregate_sync import AggregateWriter, event_columns

    spec = aggregation_spec(defs, view)
    columns = event_columns(spec)
    offline = _offline_events(defs, view, target, columns)
    if offline is None:
        return 0
    others = read_landed_arrow(target.landing, view.name, None)
    if not landed:  # to="online": the pushed events count without being landed
        others = table if others is None else pa.concat_tables([others, table], promote_options="default")
    events = _touched(_events_union(offline, others, columns), table, list(spec.keys))
    store = target.online
    return AggregateWriter(store.settings, store.project, view.name, spec).write(store, events)


def _offline_events(defs: RepoDefinitions, view: FeatureView, target: PushTarget,
                    columns: list[str]) -> pa.Table | None:
    import pyarrow as pa

    from granero.offline.schema import table_arrow_schema
    from granero.offline.tables import read_view_arrow

    offline, limit = target.offline, target.local_max_rows
    if offline is None or not offline.local or limit == 0:
        return None
    if not offline.exists(view.name):
        schema = table_arrow_schema(defs, view)
        return pa.schema([schema.field(c) for c in columns]).empty_table()
    if offline.count_rows(view.name, None, date.min, date.max) > limit:
        return None
    return read_view_arrow(offline, defs, view, None, columns, (date.min, date.max))


def _events_union(offline: pa.Table, landed: pa.Table | None, columns: list[str]) -> pa.Table:
    """Each distinct event as many times as the larger of the two tables holds it."""
    import pyarrow as pa

    if landed is None:
        return offline
    landed = landed.select(columns).cast(offline.schema)
    extra = Counter(_rows(landed)) - Counter(_rows(offline))
    kept = []
    for index, row in enumerate(_rows(landed)):
        if extra[row] > 0:
            extra[row] -= 1
            kept.append(index)
    return pa.concat_tables([offline, landed.take(pa.array(kept, pa.int64()))])


def _rows(table: pa.Table) -> list[tuple]:
    return list(zip(*[table[name].to_pylist() for name in table.column_names], strict=True))


def _touched(events: pa.Table, pushed: pa.Table, keys: list[str]) -> pa.Table:
    """The events of the entities ``pushed`` holds rows of."""
    import pyarrow as pa

    wanted = set(zip(*[pushed[k].to_pylist() for k in keys], strict=True))
    entity = zip(*[events[k].to_pylist() for k in keys], strict=True)
    return events.filter(pa.array([key in wanted for key in entity], pa.bool_()))
