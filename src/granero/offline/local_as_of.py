"""The point-in-time join in process: Arrow tables in, Arrow table out, no Spark.

It answers exactly what ``as_of_join`` answers (the rule is in that module's docstring): per entity
row, the table row with equal typed keys, event_timestamp in [ts - ttl, ts], and the greatest
(event_timestamp, created_timestamp), a null created_timestamp lowest; nulls when there is none.

How, vectorized (no Python per row), in the same shape as the Spark join:

1. Key tuples are encoded into integers (``asked_key_codes``): one dictionary encoding per key
   column of the entity rows' typed values, the table's values looked up in it; the codes of a
   composite key combined (and re-encoded) column by column. Equal codes mean equal tuples of
   typed values; a concatenated string is never built, so ("a_b", "c") and ("a", "b_c") stay
   apart. A table row whose tuple no entity row holds gets no code, as a null key gets none.
2. The table rows whose key some entity row has, and the entity rows with a key and a time, are
   stacked and sorted once by (code, time, tie): at equal time table rows come first, ordered by
   created_timestamp with null lowest, then entity rows. Materialization leaves at most one row
   per (keys, event, created), so the order is total.
3. A running maximum carries the position of the latest table row forward onto every entity row;
   it is the answer when it has the entity row's code and its event is not older than ts - ttl.
4. The feature columns are gathered with ``take``, a null index for a miss, so every Arrow type
   (float32, lists, timestamps...) comes back exactly as the table holds it.

Times are compared as integer microseconds, Spark's precision; finer inputs are truncated the way
Spark's own pandas conversion truncates them (toward zero).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from granero.offline.as_of_join import AsOfSpec
from granero.offline.schema import CREATED_TIMESTAMP, EVENT_TIMESTAMP
from granero.types import arrow_type

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_NO_KEY = -1
_MICROSECOND = timedelta(microseconds=1)
_BELOW_ANY_TIME, _ABOVE_ANY_TIME = -(2**63), 2**63 - 1
"""Tie-breakers no Spark timestamp reaches (years 1 to 9999 are ±3e17 µs): a null created, and
an entity row (after every table row of its time)."""


def as_of_join_arrow(entities: pa.Table, table: pa.Table, spec: AsOfSpec) -> pa.Table:
    """``entities`` (with ``event_timestamp`` and the keys) plus one column per output.

    Entity rows come back exactly once each, in input order, their columns unchanged, followed by
    the outputs with exactly the table's Arrow types; rows without a match within ttl get nulls.
    Keys are cast to their dtype's Arrow type first (an impossible cast raises ``ArrowInvalid``).
    """
    import numpy as np
    import pyarrow as pa

    entity_codes, table_codes = asked_key_codes(
        [entities[k] for k in spec.keys], [table[k] for k in spec.keys], list(spec.keys.values())
    )
    ts, ts_valid = micros(entities[EVENT_TIMESTAMP])
    event, event_valid = micros(table[EVENT_TIMESTAMP])
    found = _latest_at_or_before(
        table_codes, event, event_valid, micros(table[CREATED_TIMESTAMP]),
        np.where(ts_valid, entity_codes, _NO_KEY), ts,
    )
    hit = (found >= 0) & ts_valid & (entity_codes != _NO_KEY)
    hit[hit] = event[found[hit]] >= ts[hit] - spec.ttl // _MICROSECOND
    values = table.select(list(spec.outputs)).take(pa.array(np.maximum(found, 0), mask=~hit))
    joined = entities
    for feature, output in spec.outputs.items():
        joined = joined.append_column(pa.field(output, values[feature].type), values[feature])
    return joined


def key_codes(
    entity_keys: list[pa.ChunkedArray], table_keys: list[pa.ChunkedArray], dtypes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per row of each side, equal exactly when the typed key tuples are equal.

    A tuple with a null gets ``-1`` (it matches nothing).
    """
    import numpy as np
    import pyarrow as pa

    n_entities = len(entity_keys[0])
    codes = np.zeros(n_entities + len(table_keys[0]), dtype=np.int64)
    has_null = np.zeros(len(codes), dtype=bool)
    for entity, table, dtype in zip(entity_keys, table_keys, dtypes, strict=True):
        target = arrow_type(dtype)
        both = pa.chunked_array([*entity.cast(target).chunks, *table.cast(target).chunks], target)
        encoded = both.combine_chunks().dictionary_encode()
        has_null |= encoded.indices.is_null().to_numpy(zero_copy_only=False)
        codes = codes * len(encoded.dictionary) + encoded.indices.fill_null(0).to_numpy()
        if len(dtypes) > 1:
            codes = _compact(codes)
    codes[has_null] = _NO_KEY
    return codes[:n_entities], codes[n_entities:]


def asked_key_codes(
    entity_keys: list[pa.ChunkedArray], table_keys: list[pa.ChunkedArray], dtypes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``key_codes`` for a join: equal exactly when the typed key tuples are equal, and ``-1``
    for a tuple with a null and for a table row whose tuple no entity row holds (nothing asks
    for it). Only the entity rows' values are dictionary-encoded; the table's (often ten times
    as many) are looked up in that dictionary, which costs about half the hashing. A -1 stays
    -1 through the columns of a composite key."""
    import pyarrow.compute as pc

    entity_codes = table_codes = None
    for entity, table, dtype in zip(entity_keys, table_keys, dtypes, strict=True):
        target = arrow_type(dtype)
        encoded = entity.cast(target).combine_chunks().dictionary_encode()
        found = pc.index_in(table.cast(target), value_set=encoded.dictionary)
        entity_index, table_index = (_index_or_no_key(index) for index in (encoded.indices, found))
        if entity_codes is None:
            entity_codes, table_codes = entity_index, table_index
            continue
        width = len(encoded.dictionary)
        entity_codes = _combined(entity_codes, entity_index, width)
        table_codes = _combined(table_codes, table_index, width)
        entity_codes, table_codes = _compact_asked(entity_codes, table_codes)
    return entity_codes, table_codes


def _index_or_no_key(index: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Dictionary positions as int64, ``_NO_KEY`` where null (a null key, or not in it)."""
    import numpy as np

    return np.asarray(index.fill_null(_NO_KEY).to_numpy(), dtype=np.int64)


def _combined(codes: np.ndarray, index: np.ndarray, width: int) -> np.ndarray:
    """The codes of (tuple so far, next column), ``_NO_KEY`` where either is."""
    import numpy as np

    return np.where((codes < 0) | (index < 0), _NO_KEY, codes * width + index)


def _compact_asked(entity_codes: np.ndarray, table_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same equalities in dense codes 0..n-1 of the entity rows' codes (so combining another
    key cannot overflow), the table's looked up in them; ``_NO_KEY`` matches nothing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pa.array(entity_codes, mask=entity_codes < 0).dictionary_encode()
    found = pc.index_in(pa.array(table_codes, mask=table_codes < 0), value_set=encoded.dictionary)
    return _index_or_no_key(encoded.indices), _index_or_no_key(found)


def micros(times: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (truncated toward zero, as Spark converts) and validity."""
    import numpy as np
    import pyarrow as pa

    tz = times.type.tz
    as_micros = times.cast(pa.timestamp("us", tz=tz), safe=False).cast(pa.int64())
    valid = as_micros.is_valid().to_numpy(zero_copy_only=False)
    return as_micros.fill_null(0).to_numpy().astype(np.int64), np.asarray(valid, dtype=bool)


def _compact(codes: np.ndarray) -> np.ndarray:
    """The same equalities in dense codes 0..n-1, so combining another key cannot overflow."""
    import pyarrow as pa

    return pa.array(codes).dictionary_encode().indices.to_numpy().astype("int64")


def _latest_at_or_before(
    table_codes: np.ndarray,
    event: np.ndarray,
    event_valid: np.ndarray,
    created_micros: tuple[np.ndarray, np.ndarray],
    entity_codes: np.ndarray,
    ts: np.ndarray,
) -> np.ndarray:
    """Per entity row, the index of the table row with its code that is last in (event, created)
    order among those with event <= ts; -1 when there is none (or the entity row has no key)."""
    import numpy as np

    created, created_valid = created_micros
    rows = np.flatnonzero(event_valid & _asked(table_codes, entity_codes))
    asking = np.flatnonzero(entity_codes != _NO_KEY)
    found = np.full(len(entity_codes), -1, dtype=np.int64)
    if len(rows) == 0 or len(asking) == 0:
        return found
    code = np.concatenate([table_codes[rows], entity_codes[asking]])
    time = np.concatenate([event[rows], ts[asking]])
    tie = np.concatenate([
        np.where(created_valid[rows], created[rows], _BELOW_ANY_TIME),
        np.full(len(asking), _ABOVE_ANY_TIME),
    ])
    order = np.lexsort((tie, time, code))
    from_table = order < len(rows)
    latest = np.maximum.accumulate(np.where(from_table, np.arange(len(order)), -1))
    entity_at = np.flatnonzero(~from_table)
    carried = order[np.maximum(latest[entity_at], 0)]
    same_key = (latest[entity_at] >= 0) & (code[carried] == code[order[entity_at]])
    answer = rows[np.where(same_key, carried, 0)]  # carried < len(rows) where same_key
    found[asking[order[entity_at] - len(rows)]] = np.where(same_key, answer, -1)
    return found


def _asked(table_codes: np.ndarray, entity_codes: np.ndarray) -> np.ndarray:
    """Per table row, whether some entity row has its key: only those rows need sorting."""
    import numpy as np

    slots = max(table_codes.max(initial=_NO_KEY), entity_codes.max(initial=_NO_KEY)) + 2
    asked = np.zeros(slots, dtype=bool)  # the last slot, where _NO_KEY (-1) lands, stays False
    asked[entity_codes[entity_codes != _NO_KEY]] = True
    return asked[table_codes]
