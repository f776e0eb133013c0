"""The change points online stores, read by the lookup's rule, give the engine's values bit for bit.

"Online" here: ``change_points`` of the suffix values of the events materialization holds, then,
for an entity at t, the row of its last point with tile <= t // hop (its first point when none:
what ``ZRANGE key t//hop -inf BYSCORE REV LIMIT 0 1`` returns, the first scored -inf), each
window's value the suffix entry the row names, or the empty window's value for -1.
Request times: every tail crossing of every non-empty tile for every window, a microsecond
before and the hop's last microsecond after it, the newest event, past the span, at random.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from granero.aggregation.change_points import change_points
from granero.aggregation.engine import aggregate_as_of
from granero.aggregation.suffix import suffix_values, value_pairs
from tests.aggregation.random_events import KEYS, entities_table, random_case
from tests.aggregation.test_online_fold import bits, empty_bits, materialized


def crossing_times(newest: int, tiles: list[int], hop: int, windows: list[int], rng: random.Random) -> list[int]:
    """From ``newest`` on: each tile's end + W (a tail crossing), one microsecond before, the
    last microsecond of that hop; the newest event, the next microsecond, past the span, random."""
    times = {newest, newest + 1, newest + max(windows) + 3 * hop, newest + rng.randrange(max(windows) + 2 * hop)}
    for tile in tiles:
        for window in windows:
            crossing = (tile + 1) * hop + window
            times |= {crossing - 1, crossing, crossing + hop - 1}
    return sorted(t for t in times if t >= newest)


def read_points(points, hop: int, entity_points: tuple[int, int], t: int) -> int:
    """The point the lookup reads for an entity at t: the last with tile <= t // hop, else the
    entity's first (scored -inf)."""
    start, end = entity_points
    found = start + int(np.searchsorted(points.tile[start:end], t // hop, side="right")) - 1
    return max(found, start)


@pytest.mark.parametrize("seed", range(20, 36))
def test_points_read_by_the_lookup_rule_equal_the_engine_bit_for_bit(seed):
    case = random_case(seed, n_events=150, n_entities=0)
    events = materialized(case.events, None, seed)
    suffixes = suffix_values(events, case.spec)
    windows = sorted(set(case.windows))
    points = change_points(suffixes, case.hop, windows)
    starts = np.flatnonzero(points.first)
    ends = np.r_[starts[1:], len(points.tile)]
    keys = events.select(list(KEYS)).take(pa.array(suffixes.row[points.entry[starts]])).to_pylist()
    rng, asked, read = random.Random(seed), [], []
    for key, s, e in zip(keys, starts.tolist(), ends.tolist(), strict=True):
        entry = int(points.entry[s])
        mine = np.flatnonzero(suffixes.row == suffixes.row[entry])
        for t in crossing_times(int(suffixes.newest[entry]), suffixes.tile[mine].tolist(), case.hop, windows, rng):
            asked.append({**key, "t": t})
            read.append(read_points(points, case.hop, (s, e), t))
    result = aggregate_as_of(entities_table(asked), events, case.spec)
    pairs = value_pairs(case.spec)
    for aggregate in case.aggregates:
        source = points.source[read, windows.index(aggregate.window)]
        values = bits(suffixes.values[pairs.index((aggregate.column, aggregate.function, aggregate.dtype))]
                      .take(pa.array(np.maximum(source, 0))))
        online = [value if s >= 0 else empty_bits(aggregate) for value, s in zip(values, source.tolist(), strict=True)]
        assert online == bits(result[aggregate.output]), f"seed {seed} {aggregate.output}"
    assert len(asked) > 60


def test_each_entity_has_its_newest_tile_first_and_ends_with_every_window_empty():
    """The first point is the newest event's tile; points are distinct and ascending; the last
    holds every window empty, at the newest tile's crossing of the largest window; at most one
    point per non-empty tile and window, plus the first."""
    case = random_case(5, n_events=600, n_entities=1, hops=40)
    events = materialized(case.events, None, 5)
    suffixes = suffix_values(events, case.spec)
    windows = sorted(set(case.windows))
    points = change_points(suffixes, case.hop, windows)
    starts = np.flatnonzero(points.first)
    ends = np.r_[starts[1:], len(points.tile)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        entries = np.flatnonzero(suffixes.row == suffixes.row[points.entry[s]])
        newest_tile = int(suffixes.newest[entries[0]]) // case.hop
        assert points.tile[s] == newest_tile
        assert (np.diff(points.tile[s:e]) > 0).all()
        assert (points.source[e - 1] == -1).all() and (points.source[s:e - 1] >= 0).any(axis=1).all()
        assert points.tile[e - 1] == newest_tile + 1 + max(windows) // case.hop
        assert e - s <= 1 + len(entries) * len(windows)
    assert len(starts) > 3
