"""Training-time aggregates in process: entity rows (keys, t) + events -> one column per aggregate.

Rows come back as given (order, duplicates and columns untouched), keys compared as typed tuples
(``local_as_of.key_codes``), and a value at t never reads an event after t. An entity row without
a key or a time gets nulls; one whose window holds no event gets the empty values (count 0...).
Events are pre-aggregated into tiles once; each window is then answered for every row at once
(``tiles.window_states``), never by a join of rows against raw events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from granero.aggregation.functions import FUNCTIONS
from granero.aggregation.tiles import NULL_CREATED, build_tiles, order_events, prepare_column, window_states
from granero.aggregation.window import to_micros
from granero.definitions.aggregation import Aggregation
from granero.offline.local_as_of import key_codes, micros
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


def aggregate_as_of(entities: pa.Table, events: pa.Table, spec: AggregationSpec) -> pa.Table:
    """``entities`` (keys and ``event_timestamp``) plus one column per aggregate, typed per
    ``definitions.aggregation.output_dtype``.

    Tiles and folds are computed once per (function, column) pair, shared by its windows, and
    only for the keys some entity row asks for.
    """
    entity_codes, event_codes = key_codes(
        [entities[k] for k in spec.keys], [events[k] for k in spec.keys], list(spec.keys.values())
    )
    time, time_valid = micros(entities[EVENT_TIMESTAMP])
    asked = np.flatnonzero(time_valid & (entity_codes >= 0))
    event_codes = _asked_keys_only(event_codes, entity_codes[asked])
    order = order_events(event_codes, *micros(events[EVENT_TIMESTAMP]), event_created(events), spec.hop)
    columns = {c: prepare_column(events[c], d) for c, d in {(a.column, a.dtype) for a in spec.aggregates}}
    reads = {(a.function, a.column): (FUNCTIONS[a.function], columns[a.column]) for a in spec.aggregates}
    tiles = build_tiles(order, reads)
    windows = {a.window for a in spec.aggregates}
    states = window_states(tiles, order, reads, (entity_codes[asked], time[asked]), windows, spec.hop)
    joined = entities
    for a in spec.aggregates:
        fn, column = reads[a.function, a.column]
        values = fn.finalize(states[a.window][a.function, a.column], a.dtype, column.source)
        joined = joined.append_column(a.output, _scatter(values, asked, len(time)))
    return joined.select([*entities.column_names, *(a.output for a in spec.aggregates)])


def _asked_keys_only(event_codes: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """The events' key codes, ``-1`` (skipped) for keys no entity row asks for."""
    wanted = np.zeros(int(event_codes.max(initial=-1)) + 2, dtype=bool)  # the last slot: code -1
    wanted[asked[asked <= len(wanted) - 2]] = True
    return np.where(wanted[event_codes], event_codes, -1)


def event_created(events: pa.Table) -> np.ndarray:
    """Created microseconds, NULL_CREATED where null or where the events have no such column."""
    if CREATED_TIMESTAMP not in events.column_names:
        return np.full(events.num_rows, NULL_CREATED, dtype=np.int64)
    created, valid = micros(events[CREATED_TIMESTAMP])
    return np.where(valid, created, NULL_CREATED)


def _scatter(values: pa.Array, rows: np.ndarray, count: int) -> pa.Array:
    """``values`` at positions ``rows`` of a column of ``count`` entries, nulls elsewhere."""
    import pyarrow as pa

    slot = np.full(count, -1, dtype=np.int64)
    slot[rows] = np.arange(len(rows))
    return values.take(pa.array(np.maximum(slot, 0), mask=slot < 0)) if len(values) else pa.nulls(count, values.type)
