"""The engine's shared work changes no bit: windows folded together equal windows folded alone,
events of keys nobody asks for change nothing, keys split between threads answer as on one, and
the fast sorts order exactly as the slow ones.

The oracle (``test_engine_oracle``) compares with a tolerance; these compare bit for bit against
the engine itself, run the simple way.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from granero.aggregation import engine
from granero.aggregation.engine import aggregate_as_of, key_sets
from granero.aggregation.tiles import (
    _distinct_requests,
    _PairSearch,
    _sorted_by_code_then_value,
)
from granero.offline.aggregate_join import TIE_ORDERED, event_columns
from granero.offline.schema import CREATED_TIMESTAMP
from tests.aggregation.random_events import entities_table, events_table, random_case

SEEDS = range(12)


def same_bits(expected: pa.ChunkedArray, actual: pa.ChunkedArray) -> bool:
    """Equal values, nulls and bits (NaN == NaN, -0.0 != 0.0)."""
    if pa.types.is_floating(expected.type):
        expected, actual = (c.cast(pa.float64()) for c in (expected, actual))
        return expected.is_null().equals(actual.is_null()) and np.array_equal(
            expected.fill_null(0).to_numpy().view(np.int64), actual.fill_null(0).to_numpy().view(np.int64)
        )
    return expected.equals(actual)


@pytest.mark.parametrize("seed", SEEDS)
def test_windows_folded_together_equal_each_folded_alone(seed):
    case = random_case(seed)
    entities, events = entities_table(case.entities), events_table(case.events)
    together = aggregate_as_of(entities, events, case.spec)
    for window in case.windows:
        alone_spec = replace(case.spec, aggregates=[a for a in case.spec.aggregates if a.window == window])
        alone = aggregate_as_of(entities, events, alone_spec)
        for aggregate in alone_spec.aggregates:
            assert same_bits(alone[aggregate.output], together[aggregate.output]), (seed, aggregate)


@pytest.mark.parametrize("seed", SEEDS)
def test_rows_asked_among_others_equal_rows_asked_alone(seed):
    """Events of keys only the other rows ask for are dropped or kept without effect."""
    case = random_case(seed)
    entities, events = entities_table(case.entities), events_table(case.events)
    everyone = aggregate_as_of(entities, events, case.spec)
    some = np.random.default_rng(seed).permutation(entities.num_rows)[: max(1, entities.num_rows // 3)]
    few = aggregate_as_of(entities.take(some), events, case.spec)
    for aggregate in case.spec.aggregates:
        assert same_bits(everyone[aggregate.output].take(some), few[aggregate.output]), (seed, aggregate)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_keys_split_between_threads_answer_the_same_bits(seed, threads, monkeypatch):
    """Every event count takes the threaded path here (the floor lowered to 0); with 7 threads
    some sets hold no row (the random cases have 6 keys and a null)."""
    monkeypatch.setattr(engine, "PARALLEL_MIN_EVENTS", 0)
    case = random_case(seed, n_events=200, n_entities=60)
    entities, events = entities_table(case.entities), events_table(case.events)
    alone = aggregate_as_of(entities, events, case.spec)
    split = aggregate_as_of(entities, events, case.spec, threads=threads)
    assert split.column_names == alone.column_names
    assert split.select(entities.column_names).equals(entities)
    for aggregate in case.spec.aggregates:
        assert same_bits(alone[aggregate.output], split[aggregate.output]), (seed, threads, aggregate)


def test_no_asked_row_splits_into_one_empty_set(monkeypatch):
    monkeypatch.setattr(engine, "PARALLEL_MIN_EVENTS", 0)
    case = random_case(3)
    entities = entities_table([{**row, "t": None} for row in case.entities])
    result = aggregate_as_of(entities, events_table(case.events), case.spec, threads=4)
    assert all(result[a.output].null_count == entities.num_rows for a in case.spec.aggregates)


codes = st.lists(st.integers(0, 2) | st.integers(0, 50), min_size=0, max_size=60)
wide = st.sampled_from([-(2**62), -(2**61), 2**61, 2**62 - 1]) | st.integers(-(2**62), 2**62)
values = st.integers(-3, 3) | wide  # narrow: one packed sort; wide: code * span would overflow


@settings(max_examples=200, deadline=None)
@given(codes, st.lists(st.integers(-1, 50), max_size=60), st.integers(1, 6), st.data())
def test_key_sets_split_rows_and_events_by_key(asked_codes, event_codes, count, data):
    """Each row lands in exactly one set, and each event of a key some row asks for (with a
    time) in its key's set; no other event lands. Order is kept within a set; no set is empty
    of rows but a lone one."""
    asked, asked_codes = np.arange(len(asked_codes)) * 2, np.array(asked_codes, dtype=np.int64)
    event_codes = np.array(event_codes, dtype=np.int64)
    event_ok = np.array(data.draw(st.lists(st.booleans(), min_size=len(event_codes), max_size=len(event_codes))),
                        dtype=bool)
    sets = key_sets(asked, asked_codes, event_codes, count)
    assert sorted(np.concatenate([s.rows for s in sets]).tolist()) == asked.tolist()
    assert len(sets) == 1 or all(len(s.rows) for s in sets)
    for key_set in sets:
        events = key_set.events(event_codes, event_ok)
        assert np.all(np.diff(key_set.rows) > 0) and np.all(np.diff(events) > 0)
        row_keys = set(asked_codes[key_set.rows // 2].tolist())
        expected = [i for i, code in enumerate(event_codes.tolist()) if code in row_keys and event_ok[i]]
        assert events.tolist() == expected


@settings(max_examples=300, deadline=None)
@given(codes, st.data())
@example([1, 0, 1, 0], [2**61, -(2**61), 5, 7])  # (codes) * span just above 2**63
def test_code_then_value_order_is_the_stable_lexsort(code, data):
    value = data if isinstance(data, list) else data.draw(st.lists(values, min_size=len(code), max_size=len(code)))
    code, value = np.array(code, dtype=np.int64), np.array(value, dtype=np.int64)
    expected = np.lexsort((value, code))
    order, sorted_code, sorted_value = _sorted_by_code_then_value(code, value)  # read back, not gathered
    assert np.array_equal(order, expected)
    assert np.array_equal(sorted_code, code[expected]) and np.array_equal(sorted_value, value[expected])
    assert sorted_code.dtype == sorted_value.dtype == np.int64


@settings(max_examples=300, deadline=None)
@given(codes, st.data())
def test_distinct_requests_are_numpys_unique(code, data):
    time = np.array(data.draw(st.lists(values, min_size=len(code), max_size=len(code))), dtype=np.int64)
    code = np.array(code, dtype=np.int64)
    (distinct_code, distinct_time), inverse = _distinct_requests(code, time)
    expected, expected_inverse = np.unique(np.stack([code, time]), axis=1, return_inverse=True)
    assert np.array_equal(np.stack([distinct_code, distinct_time]).reshape(2, -1), expected.reshape(2, -1))
    assert np.array_equal(inverse, expected_inverse.ravel())


@pytest.mark.parametrize("seed", SEEDS)
def test_only_first_and_last_read_the_created_time(seed):
    """Retrieval reads the created time only for them (``aggregate_join.event_columns``)."""
    case = random_case(seed)
    entities, events = entities_table(case.entities), events_table(case.events)
    blind = replace(case.spec, aggregates=[a for a in case.spec.aggregates if a.function not in TIE_ORDERED])
    assert CREATED_TIMESTAMP not in event_columns(blind)
    assert CREATED_TIMESTAMP in event_columns(case.spec)
    with_created = aggregate_as_of(entities, events, blind)
    without = aggregate_as_of(entities, events.drop_columns([CREATED_TIMESTAMP]), blind)
    for aggregate in blind.aggregates:
        assert same_bits(with_created[aggregate.output], without[aggregate.output]), (seed, aggregate)


@settings(max_examples=300, deadline=None)
@given(codes, st.data())
@example([0, 3, 3], ([2**62, -(2**62), 0], [(4, 2**62), (2, 0), (3, -(2**62) - 1), (0, 2**62 + 1)]))  # ranked
@example([0, 0, 1], ([1, 3, 2], [(0, 4), (0, -10), (5, 0), (1, 3)]))  # packed: values beyond either end
@example([0, 0], ([0, 2**61], [(60, 0), (1, 0), (0, 2**61 + 5)]))  # packed: a query code would overflow
def test_pair_search_finds_the_first_row_at_or_after_each_query(code, data):
    """Against a scan of the sorted rows, over narrow values (one packed key) and wide ones."""
    if isinstance(data, tuple):
        value, queries = data
    else:
        value = data.draw(st.lists(values, min_size=len(code), max_size=len(code)))
        queries = data.draw(st.lists(st.tuples(st.integers(0, 60), values), max_size=20))
    rows = sorted(zip(code, value, strict=True))
    search = _PairSearch(np.array([c for c, _ in rows], dtype=np.int64), np.array([v for _, v in rows], dtype=np.int64))
    found = search.first_at_or_after(
        np.array([c for c, _ in queries], dtype=np.int64), np.array([v for _, v in queries], dtype=np.int64)
    )
    expected = [next((i for i, row in enumerate(rows) if row >= query), len(rows)) for query in queries]
    assert found.tolist() == expected
