"""Tiles stored per entity and merged one by one at request time (as the online lookup will)
give the engine's values bit for bit, floating sums included.

The "online" side here builds its tiles only from the events of one entity up to the request time
(materialization is capped at its run), from the events shuffled, then folds the tiles that
``window.tiles_covered`` names, oldest first, with ``fold_in_hop_order``.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.functions import FUNCTIONS
from granero.aggregation.tiles import build_tiles, fold_in_hop_order, order_events, prepare_column
from granero.aggregation.window import tiles_covered
from tests.aggregation.random_events import KEYS, entities_table, events_table, random_case


def bits(array: pa.Array) -> list:
    """Per value: None, or the exact bits of a float, or the value itself."""
    if pa.types.is_floating(array.type):
        raw = array.cast(pa.float64()).fill_null(0).to_numpy().view(np.int64).tolist()
        return [r if valid else None for r, valid in zip(raw, array.is_valid().to_pylist(), strict=True)]
    return array.to_pylist()


def stored_tiles(case, entity: dict, seed: int):
    """The entity's tiles as materialization at t stores them: only its events with ts <= t."""
    mine = [
        e for e in case.events
        if e["ts"] is not None and e["ts"] <= entity["t"] and all(e[k] == entity[k] for k in KEYS)
    ]
    random.Random(seed).shuffle(mine)
    table = events_table(mine)
    times = np.array([e["ts"] for e in mine], dtype=np.int64)
    created = np.array([-(2**62) if e["created"] is None else e["created"] for e in mine], dtype=np.int64)
    order = order_events(np.zeros(len(mine), dtype=np.int64), times, np.ones(len(mine), bool), created, case.hop)
    columns = {a.column: prepare_column(table[a.column], a.dtype) for a in case.aggregates}
    reads = {a.output: (FUNCTIONS[a.function], columns[a.column]) for a in case.aggregates}
    return build_tiles(order, reads), columns


def online_value(case, tiles, columns, aggregate, t: int) -> pa.Array:
    fn, column = FUNCTIONS[aggregate.function], columns[aggregate.column]
    wanted = set(tiles_covered(t, aggregate.window, case.hop))
    positions = [i for i, tile in enumerate(tiles.tile.tolist()) if tile in wanted]
    states = [tuple(part[i : i + 1] for part in tiles.states[aggregate.output]) for i in positions]
    state = fold_in_hop_order(fn, states) or fn.empty(1, column.values.dtype)
    return fn.finalize(state, aggregate.dtype, column.source)


@pytest.mark.parametrize(("seed", "shape"), [
    *((seed, {}) for seed in range(12)),
    *((seed, {"n_events": 1500, "n_entities": 8, "hops": 0}) for seed in range(100, 103)),
])
def test_online_tiles_merged_one_by_one_equal_the_engine_bit_for_bit(seed, shape):
    """Sparse histories, and crowded tiles (over 128 events: numpy's pairwise summation)."""
    case = random_case(seed, **shape)
    result = aggregate_as_of(entities_table(case.entities), events_table(case.events), case.spec)
    checked = 0
    for row, entity in enumerate(case.entities):
        if entity["t"] is None or any(entity[k] is None for k in KEYS):
            continue
        tiles, columns = stored_tiles(case, entity, seed)
        for aggregate in case.aggregates:
            online = online_value(case, tiles, columns, aggregate, entity["t"])
            offline = result[aggregate.output].chunk(0).slice(row, 1) if result[aggregate.output].num_chunks == 1 \
                else result[aggregate.output].combine_chunks().slice(row, 1)
            assert bits(online) == bits(offline), f"seed {seed} row {row} {aggregate.output}"
            checked += 1
    assert checked > 50
