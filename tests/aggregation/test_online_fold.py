"""The suffix values online stores, read by the lookup's rule, give the engine's values bit for
bit, floating sums included.

"Online" here: ``suffix_values`` of the events materialization holds (from the events shuffled),
then, for a window W at t, the value of the entity's first entry whose tile >= tail(t) // hop, or
the empty window's value when there is none -- what one ``ZRANGE ... BYSCORE LIMIT 0 1`` returns.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.functions import FUNCTIONS
from granero.aggregation.suffix import Suffixes, suffix_values, value_pairs
from granero.aggregation.window import floor_to_hop, tail, tile_of
from granero.types import arrow_type
from tests.aggregation.random_events import KEYS, entities_table, events_table, random_case


def bits(array: pa.Array | pa.ChunkedArray) -> list:
    """Per value: None, or the exact bits of a float, or the value itself."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_floating(array.type):
        raw = array.cast(pa.float64()).fill_null(0).to_numpy().view(np.int64).tolist()
        return [r if valid else None for r, valid in zip(raw, array.is_valid().to_pylist(), strict=True)]
    return array.to_pylist()


def read_rule(case, suffixes: Suffixes, entries: tuple[np.ndarray, np.ndarray], aggregate, times) -> list:
    """Per asked row (its entity's entries ``[start, end)``, time t), the value the lookup reads:
    the first entry with tile >= tail(t) // hop, else the empty window's value."""
    start, end = entries
    pair = value_pairs(case.spec).index((aggregate.column, aggregate.function, aggregate.dtype))
    wanted = tile_of(tail(np.asarray(times, dtype=np.int64), aggregate.window, case.hop), case.hop)
    found = np.array([s + np.searchsorted(suffixes.tile[s:e], w) for s, e, w in zip(start, end, wanted, strict=True)])
    hit = found < end
    online = bits(suffixes.values[pair].take(pa.array(np.where(hit, found, 0), mask=~hit)))
    return [value if h else empty_bits(aggregate) for value, h in zip(online, hit.tolist(), strict=True)]


def empty_bits(aggregate) -> object:
    fn, kind = FUNCTIONS[aggregate.function], np.float64 if aggregate.dtype.startswith("float") else np.int64
    source = pa.array([], arrow_type(aggregate.dtype))
    (value,) = bits(fn.finalize(fn.empty(1, np.dtype(kind)), aggregate.dtype, source))
    return value


def materialized(events: list[dict], until: int | None, seed: int) -> pa.Table:
    """The events materialization at ``until`` holds (all when None), shuffled."""
    events = [e for e in events if until is None or (e["ts"] is not None and e["ts"] <= until)]
    random.Random(seed).shuffle(events)
    return events_table(events)


@pytest.mark.parametrize(("seed", "shape"), [
    *((seed, {}) for seed in range(12)),
    *((seed, {"n_events": 1500, "n_entities": 8, "hops": 0}) for seed in range(100, 103)),
])
def test_suffixes_read_by_the_lookup_rule_equal_the_engine_bit_for_bit(seed, shape):
    """At each entity row's t, from the entity's events materialized up to t: sparse histories,
    and crowded tiles (over 128 events: numpy's pairwise summation)."""
    case = random_case(seed, **shape)
    result = aggregate_as_of(entities_table(case.entities), events_table(case.events), case.spec)
    checked = 0
    for row, entity in enumerate(case.entities):
        if entity["t"] is None or any(entity[k] is None for k in KEYS):
            continue
        mine = [e for e in case.events if all(e[k] == entity[k] for k in KEYS)]
        suffixes = suffix_values(materialized(mine, entity["t"], seed), case.spec)
        entries = (np.array([0]), np.array([len(suffixes.tile)]))
        for aggregate in case.aggregates:
            online = read_rule(case, suffixes, entries, aggregate, [entity["t"]])
            assert online == bits(result[aggregate.output].slice(row, 1)), f"seed {seed} row {row} {aggregate.output}"
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("seed", range(20, 30))
def test_every_entity_at_times_on_and_after_its_newest_event(seed):
    """The suffixes of all entities computed at once (as a sync does); t at the newest event, on
    the tile and tail edges after it, past the span and at random: the engine's values at t."""
    case = random_case(seed)
    events = materialized(case.events, None, seed)
    suffixes = suffix_values(events, case.spec)
    starts = np.flatnonzero(np.r_[True, suffixes.row[1:] != suffixes.row[:-1]])
    ends = np.r_[starts[1:], len(suffixes.row)]
    keys = events.select(list(KEYS)).take(pa.array(suffixes.row[starts])).to_pylist()
    rng, asked, start, end = random.Random(seed), [], [], []
    for key, s, e in zip(keys, starts.tolist(), ends.tolist(), strict=True):
        for t in _times_after(int(suffixes.newest[s]), case.hop, case.windows, rng):
            asked.append({**key, "t": t})
            start.append(s)
            end.append(e)
    result = aggregate_as_of(entities_table(asked), events_table(case.events), case.spec)
    for aggregate in case.aggregates:
        online = read_rule(case, suffixes, (np.array(start), np.array(end)), aggregate, [a["t"] for a in asked])
        assert online == bits(result[aggregate.output]), f"seed {seed} {aggregate.output}"
    assert len(asked) > 50


def _times_after(newest: int, hop: int, windows: list[int], rng: random.Random) -> list[int]:
    head_end = floor_to_hop(newest, hop) + hop
    edges = [newest, newest + 1, head_end - 1, head_end, *(head_end + w + d for w in windows for d in (-1, 0, hop - 1))]
    return [*edges, newest + rng.randrange(max(windows) + 2 * hop)]


def test_the_entries_are_the_non_empty_whole_tiles_within_the_span_of_the_newest_event():
    """Per entity, a tile has an entry exactly when it holds an event at or after
    floor_to_hop(newest - largest window - hop): older events never count online."""
    case = random_case(7, n_events=400, n_entities=1, hops=60)
    events = materialized(case.events, None, 7)
    suffixes = suffix_values(events, case.spec)
    keys = events.select(list(KEYS)).take(pa.array(suffixes.row)).to_pylist()
    got = {(tuple(k.values()), int(t)) for k, t in zip(keys, suffixes.tile, strict=True)}
    span = max(case.windows) + case.hop
    timed = [e for e in case.events if e["ts"] is not None and all(e[k] is not None for k in KEYS)]
    newest: dict[tuple, int] = {}
    for e in timed:
        newest[e["a"], e["s"]] = max(newest.get((e["a"], e["s"]), e["ts"]), e["ts"])
    expected = {
        ((e["a"], e["s"]), e["ts"] // case.hop) for e in timed
        if e["ts"] >= floor_to_hop(newest[e["a"], e["s"]] - span, case.hop)
    }
    assert got == expected
    assert len(expected) < len({((e["a"], e["s"]), e["ts"] // case.hop) for e in timed})  # some were dropped
