"""The numpy read of an aggregate view's members (``AggregateReader.read_columns``: the tile prefix
skipped in place, the empty window's values and the gaps filled for the whole batch) against the
row-by-row read (``read``, struct per member), on random batches: entities without a member,
WRONGTYPE (b""), members of another definition, nulls, variable-width slots. Pure: no Redis."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.aggregation.engine import Aggregate
from granero.definitions.aggregation import output_dtype
from granero.online.aggregate_encoding import TILE_BYTES, empty_values, encode_members
from granero.online.aggregate_lookup import _reader
from granero.online.encoding import batch_values, decode_batch
from granero.online.lookup import ROW_BY_ROW_BELOW
from granero.types import arrow_type

HOUR = 3_600_000_000
FUNCTIONS = ("count", "sum", "mean", "min", "max", "first", "last", "variance", "stddev", "distinct_count")
AGGREGATES = (
    Aggregate("n_1h", "fare", "count", HOUR, "float64"),
    Aggregate("sum_1h", "fare", "sum", HOUR, "float64"),
    Aggregate("mean_1h", "fare", "mean", HOUR, "float64"),
    Aggregate("n_1d", "fare", "count", 24 * HOUR, "float64"),
    Aggregate("max_1d", "fare", "max", 24 * HOUR, "float64"),
    Aggregate("small_1d", "small", "min", 24 * HOUR, "int32"),
    Aggregate("zone_1d", "zone", "last", 24 * HOUR, "string"),
    Aggregate("ok_1h", "ok", "first", HOUR, "bool"),
    Aggregate("isum_1d", "small", "sum", 24 * HOUR, "int32"),
)
OTHER = AGGREGATES[:3]  # another definition of the view: another schema id
KEYS = (("driver_id", "int64"),)


def reader(aggregates=AGGREGATES, asked=None):
    return _reader("trips", KEYS, aggregates, HOUR, asked or tuple(a.output for a in aggregates))


def random_members(rng: np.random.Generator, aggregates, count: int) -> list[bytes]:
    """``count`` members of ``aggregates``' layout, every slot null with probability 0.3."""
    layout = reader(aggregates).layout
    values = []
    for pair, _ in layout.slots:
        dtype = layout.pairs[pair][2]
        nulls = rng.random(count) < 0.3
        if dtype == "string":
            data = ["".join(rng.choice(list("abcé"), rng.integers(0, 6))) for _ in range(count)]
        elif dtype == "bool":
            data = (rng.random(count) < 0.5).tolist()
        elif dtype.startswith("int"):
            data = rng.integers(-(2**31), 2**31, count).tolist()
        else:
            data = rng.choice([0.0, -0.0, np.inf, 1e-300, np.nan], count) * rng.normal(size=count)
        values.append(pa.array(data, type=arrow_type(dtype), mask=nulls))
    tiles = rng.integers(0, 2**40, count)
    stamp = (rng.integers(0, 2**60, count), np.full(count, -(2**63)))
    return encode_members(layout, tiles, stamp, values)


def random_batch(seed: int, count: int) -> list[bytes | None]:
    """Per entity one of: a member, none, b"" (a key of another type), another definition's."""
    rng = np.random.default_rng(seed)
    mine, other = random_members(rng, AGGREGATES, count), random_members(rng, OTHER, count)
    kinds = rng.choice(4, count, p=[0.6, 0.2, 0.1, 0.1])
    return [(m, None, b"", o)[k] for m, o, k in zip(mine, other, kinds.tolist(), strict=True)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(ROW_BY_ROW_BELOW, 70), asked=st.permutations(
    [a.output for a in AGGREGATES]), keep=st.integers(1, len(AGGREGATES)))
def test_numpy_read_equals_the_row_by_row_read(seed, count, asked, keep):
    """Statuses, values (bit for bit: repr tells -0.0 and nan apart), missing rows, event times."""
    view = reader(asked=tuple(asked[:keep]))
    raw = random_batch(seed, count)
    now = 123_456_789
    together = view.read_columns(raw, now)
    one_by_one = view._columns_of_reads([view.read([m], now) for m in raw])
    assert repr(together) == repr(one_by_one)


def test_every_empty_value_is_null_or_the_zero_left_where_a_value_is_missing():
    """``read_columns`` relies on it: an entity without a member reads ``batch_values``' zero."""
    checked = 0
    for function in FUNCTIONS:
        for dtype in ("int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp"):
            aggregates = (Aggregate("x", "c", function, HOUR, dtype),)
            layout = reader(aggregates).layout
            (empty,) = empty_values(layout)
            batch = decode_batch(layout.codec, [None])
            (column,) = batch_values(layout.codec, batch, (0,), np.ones((1, 1), dtype=bool))
            if empty is not None:
                assert (type(column[0]), column[0]) == (type(empty), empty), (function, dtype)
                assert output_dtype(function, dtype) in ("int64", "float64")
                checked += 1
    assert checked == 3 * 8  # count, sum and distinct_count over every dtype


@pytest.mark.parametrize("skip", [0, 1, TILE_BYTES])
def test_a_skipped_prefix_decodes_as_the_value_sliced_off(skip):
    rng = np.random.default_rng(skip)
    layout = reader().layout
    members = [m[TILE_BYTES:] for m in random_members(rng, AGGREGATES, 40)]
    sliced = [*members, None, b"", members[0][:20]]  # the last too short for a record
    prefixed = [None if m is None else bytes(rng.integers(0, 256, skip, dtype=np.uint8)) + m for m in sliced]
    left, right = decode_batch(layout.codec, prefixed, skip=skip), decode_batch(layout.codec, sliced)
    wanted = tuple(range(len(layout.codec.features)))
    missing = left.nulls | ~left.found[:, None]
    assert repr(batch_values(layout.codec, left, wanted, missing)) == repr(
        batch_values(layout.codec, right, wanted, missing))
    for name in ("found", "event_micros", "nulls", "absent"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name


def test_a_value_of_another_format_version_is_refused_past_the_prefix():
    layout = reader().layout
    (member,) = random_members(np.random.default_rng(1), AGGREGATES, 1)
    for changed in (member[:TILE_BYTES] + b"\x02" + member[TILE_BYTES + 1 :], member[:TILE_BYTES] + b"\x02short"):
        with pytest.raises(ValueError, match="format version 2"):
            decode_batch(layout.codec, [member] * 20 + [changed], skip=TILE_BYTES)
