"""Sync of an aggregate view: recompute each touched entity's online state from its offline events.

An entity's online state is a pure function of its offline events with ``floor_to_hop(newest -
span) <= ts <= newest`` (``aggregation.suffix``), so a sync recomputes it whole, from the offline
table, for every entity with at least one event in the synced window (every entity of the table
when no window is given), and rewrites its sorted set (``RedisStore.write_aggregate_entities``).
Hence re-materializing a window rewrites the same bytes, a backfill of an older window never
double-counts (the entity's newer events are read from the table too), and a late event
recomputes its entity.

``AggregateWriter`` does the work on Arrow tables holding *all* the offline events of the
entities to write: in process for small local tables, inside ``applyInArrow`` on Spark executors
for large ones, where the events are grouped into buckets by a hash of the keys so that each call
sees whole entities. Executors import pyarrow, numpy, redis and granero's pure modules only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from granero.aggregation.change_points import change_points
from granero.aggregation.engine import AggregationSpec
from granero.aggregation.suffix import Suffixes, suffix_values
from granero.aggregation.tiles import NULL_CREATED
from granero.freshness.online_writes import newest_event_micros, record_online_write
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from granero.online.aggregate_encoding import encode_members, layout_of, member_scores, slot_values
from granero.online.aggregate_writes import AggregateEntity
from granero.online.encoding import NULL_CREATED as STORED_NULL_CREATED
from granero.online.encoding import encode_entity_keys
from granero.online.redis import RedisSettings, RedisStore
from granero.online.sync import sync_error

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from granero.definitions import FeatureView, RepoDefinitions
    from granero.offline.tables import OfflineStore
    from granero.registry.intervals import Interval

ENTITIES_PER_WRITE = 2000
MEMBERS_PER_WRITE = 20_000
"""Entities and members per store call (one payload, sent within the socket timeout): ~3 MB of
members of 12 slots."""
BUCKET_ROWS = 200_000
"""Events per Spark bucket (one ``applyInArrow`` call holds a bucket in memory)."""


@dataclass(frozen=True)
class AggregateWriter:
    """Computes and writes the online state of the entities whose events it is given; plain,
    picklable data, so Spark executors build their own store."""

    settings: RedisSettings
    project: str
    view: str
    spec: AggregationSpec

    def write(self, store: RedisStore, events: pa.Table) -> int:
        """Recompute and write every entity of ``events`` (all of its offline events); returns
        how many entities were stored."""
        written = sum(store.write_aggregate_entities(self.view, part) for part in _writes(self.entities(events)))
        newest = newest_event_micros(events[EVENT_TIMESTAMP])
        if written and newest is not None:  # the newest event's entity expires last: live if any is
            record_online_write(store, self.view, newest)
        return written

    def entities(self, events: pa.Table) -> list[AggregateEntity]:
        """The new state of every entity of ``events``, oldest change point first (pure)."""
        suffixes = suffix_values(events, self.spec)
        if len(suffixes.tile) == 0:
            return []
        layout = layout_of(self.spec)
        points = change_points(suffixes, self.spec.hop, layout.windows)
        created = np.where(suffixes.created == NULL_CREATED, STORED_NULL_CREATED, suffixes.created)[points.entry]
        values = slot_values(layout, suffixes.values, points.source)
        members = encode_members(layout, points.tile, (suffixes.newest[points.entry], created), values)
        starts = np.flatnonzero(points.first)
        keys = self._keys(events, suffixes.row[points.entry[starts]])
        ends = np.r_[starts[1:], len(members)]
        scores = member_scores(points.first.tolist(), points.tile.tolist())
        expiry = self._expire_at_ms(suffixes, points.entry[starts]).tolist()
        return [
            AggregateEntity(key, members[s:e], scores[s:e], at)
            for key, s, e, at in zip(keys, starts.tolist(), ends.tolist(), expiry, strict=True)
        ]

    def _keys(self, events: pa.Table, rows: np.ndarray) -> list[bytes]:
        import pyarrow as pa

        picked = events.select(list(self.spec.keys)).take(pa.array(rows))
        return encode_entity_keys(list(self.spec.keys.values()), [c.combine_chunks() for c in picked.columns])

    def _expire_at_ms(self, suffixes: Suffixes, entries: np.ndarray) -> np.ndarray:
        """Per entity (one of its suffix ``entries``): the end of its newest tile + largest window
        + hop, when every window at any later time is empty (rounded up to a millisecond)."""
        hop = self.spec.hop
        span = max(a.window for a in self.spec.aggregates) + hop
        end = (suffixes.newest[entries] // hop + 1) * hop + span
        return -(-end // 1000)

    def __call__(self, events: pa.Table) -> pa.Table:
        """``applyInArrow`` on an executor: one bucket of whole entities in, a count out."""
        import pyarrow as pa

        store = RedisStore(self.settings, self.project)
        try:
            written = self.write(store, events.drop_columns([c for c in events.column_names if c == "_bucket"]))
        finally:
            store.close()
        return pa.table({"written": pa.array([written], pa.int64())})


def _writes(entities: list[AggregateEntity]) -> Iterator[list[AggregateEntity]]:
    """``entities`` in store calls of at most ENTITIES_PER_WRITE entities and MEMBERS_PER_WRITE
    members (a larger entity alone)."""
    part: list[AggregateEntity] = []
    members = 0
    for entity in entities:
        if part and (len(part) == ENTITIES_PER_WRITE or members + len(entity.members) > MEMBERS_PER_WRITE):
            yield part
            part, members = [], 0
        part.append(entity)
        members += len(entity.members)
    if part:
        yield part


def event_columns(spec: AggregationSpec) -> list[str]:
    """The offline table's columns a sync reads: keys, times and the columns aggregated."""
    return list(dict.fromkeys([*spec.keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *(a.column for a in spec.aggregates)]))


def touched_events(table: pa.Table, keys: list[str], dtypes: list[str], interval: Interval | None) -> pa.Table:
    """The rows of ``table`` whose entity has at least one event in ``interval`` (all rows when
    None): the offline events of the entities a sync of that window recomputes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from granero.offline.local_as_of import key_codes

    if interval is None:
        return table
    event = table[EVENT_TIMESTAMP]
    inside = pc.and_(pc.greater_equal(event, interval.start), pc.less(event, interval.end))
    inside = np.asarray(inside.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    _, codes = key_codes([table[k].slice(0, 0) for k in keys], [table[k] for k in keys], dtypes)
    touched = np.unique(codes[inside & (codes >= 0)])
    return table.filter(pa.array(np.isin(codes, touched)))


def sync_aggregate_view(
    table: DataFrame, settings: RedisSettings, project: str, view: str, spec: AggregationSpec,
    interval: Interval | None,
) -> int:
    """From the Spark executors: every entity of ``table`` (the view's offline table) with an
    event in ``interval`` (all when None) recomputed and written; returns entities stored."""
    from pyspark.sql import functions as F

    keys = list(spec.keys)
    events = table.select(*event_columns(spec)).dropna(subset=keys)
    if interval is not None:
        event = F.col(EVENT_TIMESTAMP)
        inside = (event >= F.lit(interval.start)) & (event < F.lit(interval.end))
        events = events.join(events.where(inside).select(*keys).distinct(), on=keys, how="left_semi")
    buckets = max(1, -(-events.count() // BUCKET_ROWS))
    writer = AggregateWriter(settings, project, view, spec)
    try:
        bucketed = events.withColumn("_bucket", F.pmod(F.hash(*keys), F.lit(buckets)))
        counts = bucketed.groupBy("_bucket").applyInArrow(
            lambda bucket: writer(bucket), "written long"  # a function: Spark counts a callable's self
        )
        return int(sum(row[0] for row in counts.collect()))
    except Exception as error:  # a failed Spark job surfaces as a py4j/pyspark error
        raise sync_error(view, error) from None


def sync_local(
    store: RedisStore, offline: OfflineStore, defs: RepoDefinitions, view: FeatureView,
    interval: Interval | None, max_rows: int,
) -> int | None:
    """The sync in process (no JVM): the table's events read whole, when it is local and holds
    at most ``max_rows`` rows; None otherwise (Spark syncs it). Entities stored."""
    from granero.aggregation.spec import aggregation_spec
    from granero.offline.tables import read_view_arrow

    if not offline.local or max_rows == 0:
        return None
    if offline.exists(view.name) and offline.count_rows(view.name, None, date.min, date.max) > max_rows:
        return None
    spec = aggregation_spec(defs, view)
    table = read_view_arrow(offline, defs, view, None, event_columns(spec), (date.min, date.max))
    events = touched_events(table, list(spec.keys), list(spec.keys.values()), interval)
    return AggregateWriter(store.settings, store.project, view.name, spec).write(store, events)
