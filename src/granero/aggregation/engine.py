"""Training-time aggregates in process: entity rows (keys, t) + events -> one column per aggregate.

Rows come back as given (order, duplicates and columns untouched), keys compared as typed tuples
(``local_as_of.asked_key_codes``), and a value at t never reads an event after t. An entity row without
a key or a time gets nulls; one whose window holds no event gets the empty values (count 0...).
Events are pre-aggregated into tiles once; each window is then answered for every row at once
(``tiles.window_states``), never by a join of rows against raw events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from granero.aggregation.functions import FUNCTIONS
from granero.aggregation.tiles import (
    NULL_CREATED,
    EventOrder,
    build_tiles,
    order_events,
    prepare_column,
    window_states,
)
from granero.aggregation.window import to_micros
from granero.definitions.aggregation import Aggregation
from granero.offline.local_as_of import asked_key_codes, micros
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Aggregate:
    """One output column: ``function`` of ``column`` (of ``dtype``) over ``window`` microseconds."""

    output: str
    column: str
    function: str
    window: int
    dtype: str


@dataclass(frozen=True)
class AggregationSpec:
    """What a view asks of the engine: typed keys, the hop (microseconds), the aggregates."""

    keys: Mapping[str, str]
    hop: int
    aggregates: Sequence[Aggregate]

    @classmethod
    def of(
        cls, keys: Mapping[str, str], aggregations: Sequence[Aggregation], dtypes: Mapping[str, str], hop: timedelta
    ) -> AggregationSpec:
        """From checked definitions (``definitions.aggregation.check_aggregations``, ``resolve_hop``)."""
        aggregates = [
            Aggregate(a.name, a.column, a.function, to_micros(a.window), dtypes[a.column]) for a in aggregations
        ]
        return cls(dict(keys), to_micros(hop), aggregates)


def aggregate_as_of(entities: pa.Table, events: pa.Table, spec: AggregationSpec, threads: int = 1) -> pa.Table:
    """``entities`` (keys and ``event_timestamp``) plus one column per aggregate, typed per
    ``definitions.aggregation.output_dtype``.

    Tiles and folds are computed once per (function, column) pair, shared by its windows, and
    only for the keys some entity row asks for. With ``threads`` > 1 and enough events, the keys
    are split into that many disjoint sets answered side by side (numpy releases the GIL in its
    sorts, gathers and ufuncs): a key's tiles and folds never depend on the other keys, so the
    values are the same bits either way.
    """
    entity_codes, event_codes = asked_key_codes(
        [entities[k] for k in spec.keys], [events[k] for k in spec.keys], list(spec.keys.values())
    )
    time, time_valid = micros(entities[EVENT_TIMESTAMP])
    asked = np.flatnonzero(time_valid & (entity_codes >= 0))
    ts, ts_valid = micros(events[EVENT_TIMESTAMP])
    columns = {c: prepare_column(events[c], d) for c, d in {(a.column, a.dtype) for a in spec.aggregates}}
    reads = {(a.function, a.column): (FUNCTIONS[a.function], columns[a.column]) for a in spec.aggregates}
    created = event_created(events)
    count = threads if events.num_rows >= PARALLEL_MIN_EVENTS else 1
    parts = key_sets(asked, entity_codes[asked], event_codes, count)

    def answer(part: KeySet) -> dict[str, pa.Array]:
        order = order_events(part.events(event_codes, ts_valid), event_codes, ts, created, spec.hop)
        return _answer(spec, reads, (entity_codes[part.rows], time[part.rows]), order)

    rows = np.concatenate([part.rows for part in parts])
    if len(parts) == 1:
        return _joined(entities, spec, rows, [answer(parts[0])], map)
    with ThreadPoolExecutor(len(parts), thread_name_prefix="granero-aggregate") as pool:
        return _joined(entities, spec, rows, list(pool.map(answer, parts)), pool.map)


PARALLEL_MIN_EVENTS = 200_000
"""Fewer events than this are answered on one thread: below it, starting threads and splitting
the arrays cost about what the second core saves."""


@dataclass(frozen=True)
class KeySet:
    """The entity rows of one set of keys, and how to pick the set's events: by the set of each
    event's key code (``slot``: one entry per code, then one for the code -1 of a null key; -1
    for a key no row asks for). Picking reads every event's code, so each thread picks its own."""

    rows: np.ndarray
    number: int
    slot: np.ndarray

    def events(self, event_codes: np.ndarray, event_ok: np.ndarray) -> np.ndarray:
        """The positions of the events of this set's keys where ``event_ok`` (they have a time),
        in input order."""
        return np.flatnonzero((self.slot[event_codes] == self.number) & event_ok)


def key_sets(asked: np.ndarray, asked_codes: np.ndarray, event_codes: np.ndarray, count: int) -> list[KeySet]:
    """``asked`` (entity row positions) split into ``count`` sets by key code (``code % count``:
    codes are dense, so the sets come out about even), each in the given order, with the rule
    that picks its events; the sets without a row are left out, but for one."""
    size = max(int(event_codes.max(initial=-1)), int(asked_codes.max(initial=-1))) + 2
    slot = np.full(size, -1, dtype=np.int16 if count < 2**15 else np.int64)  # the last: code -1, never asked
    slot[asked_codes] = asked_codes % max(count, 1)
    rows = _split(asked, asked_codes, count) if count > 1 else [asked]
    sets = [KeySet(part, number, slot) for number, part in enumerate(rows)]
    return [s for s in sets if len(s.rows)] or sets[:1]


def _split(items: np.ndarray, codes: np.ndarray, count: int) -> list[np.ndarray]:
    """``items`` by ``codes % count``, order kept within a set (a stable sort of small ints,
    which numpy does by radix)."""
    number = (codes % count).astype(np.int16 if count <= 2**15 else np.int64)
    ordered = items[np.argsort(number, kind="stable")]
    ends = np.cumsum(np.bincount(number, minlength=count))
    return np.split(ordered, ends[:-1])


def _answer(
    spec: AggregationSpec, reads: Mapping, request: tuple[np.ndarray, np.ndarray], order: EventOrder
) -> dict[str, pa.Array]:
    """Each aggregate's values for the ``request`` rows (codes, times), from the events in ``order``."""
    tiles = build_tiles(order, reads)
    states = window_states(tiles, order, reads, request, {a.window for a in spec.aggregates}, spec.hop)
    answers = {}
    for a in spec.aggregates:
        fn, column = reads[a.function, a.column]
        answers[a.output] = fn.finalize(states[a.window][a.function, a.column], a.dtype, column.source)
    return answers


def _joined(
    entities: pa.Table,
    spec: AggregationSpec,
    rows: np.ndarray,
    answers: Sequence[Mapping[str, pa.Array]],
    mapper: Callable = map,
) -> pa.Table:
    """``entities`` plus each aggregate's column: ``answers`` (one per key set, its rows in
    ``rows`` in turn) at their rows, nulls elsewhere. The columns are gathered through
    ``mapper`` (a thread pool's map: Arrow's ``take`` releases the GIL)."""
    import pyarrow as pa

    at = _positions(rows, entities.num_rows)

    def scattered(output: str) -> pa.ChunkedArray | pa.Array:
        values = pa.chunked_array([answer[output] for answer in answers])
        return values.take(at) if len(values) else pa.nulls(len(at), values.type)

    outputs = [a.output for a in spec.aggregates]
    joined = entities
    for output, column in zip(outputs, mapper(scattered, outputs), strict=True):
        joined = joined.append_column(output, column)
    return joined.select([*entities.column_names, *outputs])


def event_created(events: pa.Table) -> np.ndarray:
    """Created microseconds, NULL_CREATED where null or where the events have no such column."""
    if CREATED_TIMESTAMP not in events.column_names:
        return np.full(events.num_rows, NULL_CREATED, dtype=np.int64)
    created, valid = micros(events[CREATED_TIMESTAMP])
    return np.where(valid, created, NULL_CREATED)


def _positions(rows: np.ndarray, count: int) -> pa.Array:
    """Per entry of a column of ``count``, the position in ``rows`` of its row; null for a row
    not in ``rows``: a ``take`` of the answers by it scatters them, nulls elsewhere."""
    import pyarrow as pa

    slot = np.full(count, -1, dtype=np.int64)
    slot[rows] = np.arange(len(rows))
    return pa.array(np.maximum(slot, 0), mask=slot < 0)
