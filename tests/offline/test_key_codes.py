"""Key codes, the in-process joins' only notion of key equality: equal codes exactly when the
typed key tuples are equal, for single and composite keys, with nulls and near-collisions."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.offline.local_as_of import asked_key_codes, key_codes

NUMBERS = st.sampled_from([None, 0, 1, 2, -1, 2**62, 12])
TEXTS = st.sampled_from([None, "", "x", "x_", "_x", "y"])
TUPLES = st.tuples(NUMBERS, TEXTS)


def columns(rows: list[tuple], width: int) -> list[pa.ChunkedArray]:
    """Each key column of ``rows``, split into two chunks as a read table may be."""
    types = [pa.int64(), pa.string()][:width]
    out = []
    for i, kind in enumerate(types):
        values = [row[i] for row in rows]
        half = len(values) // 2
        out.append(pa.chunked_array([pa.array(values[:half], kind), pa.array(values[half:], kind)], kind))
    return out


DTYPES = ["int64", "string"]


@settings(max_examples=300, deadline=None)
@given(st.lists(TUPLES, max_size=25), st.lists(TUPLES, max_size=40), st.sampled_from([1, 2]))
def test_asked_codes_are_equal_exactly_when_the_typed_tuples_are(entity_rows, table_rows, width):
    entity_rows = [row[:width] for row in entity_rows]
    table_rows = [row[:width] for row in table_rows]
    entity, table = asked_key_codes(columns(entity_rows, width), columns(table_rows, width), DTYPES[:width])
    asked = {row for row in entity_rows if None not in row}
    for i, row in enumerate(entity_rows):
        assert (entity[i] == -1) == (None in row)
        for j, other in enumerate(entity_rows):
            if None not in row and None not in other:
                assert (entity[i] == entity[j]) == (row == other)
    for j, row in enumerate(table_rows):
        assert (table[j] == -1) == (row not in asked)
        for i, other in enumerate(entity_rows):
            if None not in other:
                assert (table[j] == entity[i]) == (row == other)


@settings(max_examples=100, deadline=None)
@given(st.lists(TUPLES, max_size=25), st.lists(TUPLES, max_size=40))
def test_asked_codes_code_the_entity_rows_as_the_union_encoding_does(entity_rows, table_rows):
    """Only the table side differs from ``key_codes`` (which groups a table's own rows): the
    entity rows' equalities are the same."""
    asked, _ = asked_key_codes(columns(entity_rows, 2), columns(table_rows, 2), DTYPES)
    union, _ = key_codes(columns(entity_rows, 2), columns(table_rows, 2), DTYPES)
    assert [(a == b, a == -1) for a in asked for b in asked] == [(a == b, a == -1) for a in union for b in union]
