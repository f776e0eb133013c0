"""The in-process engine against the brute-force oracle, on randomized events over many seeds."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from granero.aggregation.engine import aggregate_as_of
from tests.aggregation.oracle import oracle
from tests.aggregation.random_events import KEYS, entities_table, events_table, frame, random_case

SEEDS = range(40)


def engine_values(column: pa.ChunkedArray) -> list:
    """Python values; timestamps as int microseconds (the oracle's unit)."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return column.to_pylist()


def same(expected, actual) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, float) or isinstance(actual, float):
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9)
    return expected == actual and type(expected) is type(actual)


def mismatches(case, result: pa.Table) -> list[str]:
    expected = oracle(frame(case.entities), frame(case.events), list(KEYS), case.hop, case.aggregates)
    found = []
    for name, values in expected.items():
        actual = engine_values(result[name])
        found += [
            f"{name} row {i} {case.entities[i]}: expected {e!r}, got {a!r}"
            for i, (e, a) in enumerate(zip(values, actual, strict=True)) if not same(e, a)
        ]
    return found


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_matches_the_oracle(seed):
    case = random_case(seed)
    entities = entities_table(case.entities)
    result = aggregate_as_of(entities, events_table(case.events), case.spec)
    assert result.select(entities.column_names).equals(entities)
    problems = mismatches(case, result)
    assert not problems, f"seed {seed} (hop {case.hop}, windows {case.windows}):\n" + "\n".join(problems[:10])
