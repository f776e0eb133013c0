"""The online byte layout: keys are injective and identical from Python and Arrow; values round
trip every dtype with nulls; the version sits where the write-if-newer script reads it."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from granero.online.encoding import (
    NULL_CREATED,
    encode_entity_key,
    encode_entity_keys,
    expire_at_ms,
    key_prefix,
    read_version,
    to_micros,
    value_codec,
)
from granero.types import SCALARS, arrow_type

T0 = datetime(2026, 1, 7, 12, 30, 15, 123456, tzinfo=UTC)
SAMPLES = {
    "int32": [-(2**31), 7, 2**31 - 1],
    "int64": [-(2**63), 0, 2**63 - 1],
    "float32": [1.5, -0.0, float("inf")],
    "float64": [0.1, float("nan"), -1e300],
    "bool": [True, False, True],
    "string": ["", "héllo ✓", "a\x00b"],
    "bytes": [b"", b"\x00\xff", b"{}"],
    "timestamp": [
        T0,
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2262, 1, 1, tzinfo=UTC),
    ],
}
DTYPES = [*SCALARS, *(f"list<{s}>" for s in SCALARS)]
KEY_DTYPES = ["int32", "int64", "bool", "string", "bytes", "timestamp"]


def column(dtype: str, values: list) -> pa.Array:
    return pa.array(values, arrow_type(dtype))


def sample_rows(dtype: str) -> list:
    """Three values plus a null; lists hold the samples with a null element, and an empty list."""
    if not dtype.startswith("list<"):
        return [*SAMPLES[dtype], None]
    element = SAMPLES[dtype[5:-1]]
    return [element, [element[0], None, element[1]], [], None]


def same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b or (isinstance(a, float) and a == b)


def encode(features: list[tuple[str, str]], rows: dict[str, list], created=None) -> list[bytes]:
    n = len(next(iter(rows.values())))
    event = column("timestamp", [T0] * n)
    created = column("timestamp", created or [None] * n)
    return value_codec(tuple(features)).encode_columns(
        event, created, [column(d, rows[f]) for f, d in features]
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_with_nulls(dtype):
    rows = sample_rows(dtype)
    values = encode([("f", dtype)], {"f": rows})
    codec = value_codec((("f", dtype),))
    decoded = [codec.decode(v, [0]).values[0] for v in values]
    if dtype == "float32":  # stored as float32: compare with the float32 of each sample
        rows = [None if r is None else float(np.float32(r)) for r in rows]
    if dtype == "list<float32>":
        rows = [
            r if r is None else [None if x is None else float(np.float32(x)) for x in r]
            for r in rows
        ]
    assert all(same(d, r) for d, r in zip(decoded, rows, strict=True)), (decoded, rows)


def test_all_dtypes_in_one_value_and_subsets_decode():
    features = [(f"f{i}", d) for i, d in enumerate(DTYPES)]
    rows = {f: sample_rows(d)[:3] for f, d in features}
    values = encode(features, rows)
    codec = value_codec(tuple(features))
    wanted = [len(DTYPES) - 1, 3, 9]  # a list after everything, a fixed one, a list in between
    for i, value in enumerate(values):
        decoded = codec.decode(value, wanted).values
        for position, got in zip(wanted, decoded, strict=True):
            want = rows[features[position][0]][i]
            assert same(got, want) or features[position][1].endswith("float32>"), (
                position,
                got,
                want,
            )


def test_version_header_carries_event_and_created_micros():
    created = [T0 + timedelta(minutes=1), None]
    values = encode([("x", "int64")], {"x": [1, 2]}, created=created)
    assert values[0][0] == 1  # format version
    assert read_version(values[0]) == (to_micros(T0), to_micros(created[0]))
    assert read_version(values[1]) == (to_micros(T0), None)
    assert struct.unpack_from("<qq", values[1], 1) == (
        to_micros(T0),
        NULL_CREATED,
    )  # null sorts lowest
    decoded = value_codec((("x", "int64"),)).decode(values[0], [0])
    assert (decoded.event_micros, decoded.created_micros) == (to_micros(T0), to_micros(created[0]))


def test_value_written_under_another_schema_is_not_decoded():
    value = encode([("x", "int64")], {"x": [1]})[0]
    assert value_codec((("x", "int64"), ("y", "int64"))).decode(value, [0]) is None
    assert value_codec((("x", "int32"),)).decode(value, [0]) is None
    with pytest.raises(ValueError, match="format version 9"):
        value_codec((("x", "int64"),)).decode(b"\x09" + value[1:], [0])


def test_twenty_doubles_make_a_compact_value():
    features = [(f"f{i}", "float64") for i in range(20)]
    value = encode(features, {f: [0.5] for f, _ in features})[0]
    assert len(value) == 1 + 8 + 8 + 4 + 3 + 20 * 8


@pytest.mark.parametrize("dtype", KEY_DTYPES)
def test_entity_keys_from_python_and_arrow_are_identical(dtype):
    values = [v for v in SAMPLES[dtype]]
    from_arrow = encode_entity_keys([dtype], [column(dtype, values)])
    assert from_arrow == [encode_entity_key([dtype], [v]) for v in values]
    assert len(set(from_arrow)) == len(
        {to_micros(v) if dtype == "timestamp" else v for v in values}
    )


def test_entity_keys_from_numpy_and_python_ints_agree():
    numpy_ints = np.array([1, 2**40], dtype=np.int64)
    assert encode_entity_key(["int64"], [numpy_ints[1]]) == encode_entity_key(["int64"], [2**40])
    assert encode_entity_keys(["int32"], [pa.array(np.array([5], dtype=np.int32))]) == [
        encode_entity_key(["int32"], [5])
    ]


def test_composite_keys_never_collide():
    ints = [(1, 23), (12, 3), (123, 0), (0, 123)]
    strings = [("a", "bc"), ("ab", "c"), ("abc", ""), ("", "abc")]
    assert len({encode_entity_key(["int32", "int32"], k) for k in ints}) == len(ints)
    assert len({encode_entity_key(["string", "string"], k) for k in strings}) == len(strings)
    mixed = encode_entity_keys(
        ["int32", "string"], [column("int32", [1, 12]), column("string", ["23", "3"])]
    )
    assert mixed[0] != mixed[1]
    assert mixed == [encode_entity_key(["int32", "string"], k) for k in [(1, "23"), (12, "3")]]


def test_key_layout_is_project_view_entity():
    key = key_prefix("rides", "driver_stats") + encode_entity_key(["int64"], [1001])
    assert key == b"rides:driver_stats:i" + (1001).to_bytes(8, "big")


def test_null_join_keys_are_refused():
    with pytest.raises(ValueError, match="nulls"):
        encode_entity_keys(["int64"], [column("int64", [1, None])])


def test_expiry_rounds_up_to_keep_the_inclusive_ttl_end():
    event = np.array([to_micros(T0), to_micros(T0.replace(microsecond=0))])
    expiry = expire_at_ms(event, timedelta(hours=1))
    end = T0 + timedelta(hours=1)
    assert expiry[0] == to_micros(end) // 1000 + 1  # 123456 us -> the next ms
    assert expiry[1] == to_micros(end.replace(microsecond=0)) // 1000
