"""Wire <-> Python conversion: every dtype round-trips, and bad entity rows fail precisely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings

from granero.errors import GraneroError, InvalidRequest
from granero.online.encoding import from_micros, to_micros
from granero.online.lookup import FeatureValue, OnlineResult, Status, ViewRead
from granero.serving.convert import (
    decode_entity_rows,
    decode_result,
    decode_value,
    encode_entity_rows,
    encode_key,
    encode_reads,
    value_encoder,
    value_writer,
)
from granero.serving.v1.serving_pb2 import EntityRow, FieldStatus
from granero.serving.v1.value_pb2 import Value
from granero.types import SCALARS
from tests.serving.test_fuzz import VALUES, malformed

MOMENT = datetime(2026, 1, 7, 12, 30, 15, 123456, tzinfo=UTC)

SAMPLES = {
    "int32": -(2**31),
    "int64": 2**62,
    "float32": 0.5,
    "float64": 1 / 3,
    "bool": True,
    "string": "héllo",
    "bytes": b"\x00\xff",
    "timestamp": MOMENT,
    "list<int32>": [1, -2],
    "list<int64>": [2**40],
    "list<float32>": [0.25, 1.5],
    "list<float64>": [0.1, 0.2],
    "list<bool>": [True, False],
    "list<string>": ["a", ""],
    "list<bytes>": [b"x"],
    "list<timestamp>": [MOMENT, MOMENT + timedelta(days=1)],
}


@pytest.mark.parametrize("dtype", SAMPLES)
def test_every_dtype_round_trips_and_null_stays_null(dtype):
    encode = value_encoder(dtype)
    decoded = decode_value(Value.FromString(encode(SAMPLES[dtype]).SerializeToString()))
    assert decoded == SAMPLES[dtype]
    assert type(decoded) is type(SAMPLES[dtype])
    assert decode_value(encode(None)) is None


def test_timestamps_are_utc_micros_and_naive_means_utc():
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    assert to_micros(MOMENT.replace(tzinfo=None)) == to_micros(MOMENT)
    assert from_micros(to_micros(MOMENT)) == MOMENT


def test_view_reads_encode_as_the_library_result_does():
    micros = to_micros(MOMENT)
    reads = [
        [ViewRead(Status.PRESENT, micros, [1.5, None]), ViewRead(Status.PRESENT, micros, [MOMENT])],
        [ViewRead(Status.NOT_FOUND, None, None), ViewRead(Status.OUTSIDE_MAX_AGE, micros, None)],
    ]
    dtypes = [["float64", "list<string>"], ["timestamp"]]
    writers = [[value_writer(d) for d in view] for view in dtypes]
    response, counts = encode_reads(reads, ["v__a", "v__b", "w__t"], writers)
    expected = OnlineResult.from_rows(["v__a", "v__b", "w__t"], [
        [FeatureValue(1.5, Status.PRESENT, MOMENT), FeatureValue(None, Status.NULL_VALUE, MOMENT),
         FeatureValue(MOMENT, Status.PRESENT, MOMENT)],
        [FeatureValue(None, Status.NOT_FOUND, None), FeatureValue(None, Status.NOT_FOUND, None),
         FeatureValue(None, Status.OUTSIDE_MAX_AGE, MOMENT)],
    ])
    assert decode_result(response) == expected
    assert counts == {FieldStatus.PRESENT: 2, FieldStatus.NULL_VALUE: 1,
                      FieldStatus.NOT_FOUND: 2, FieldStatus.OUTSIDE_MAX_AGE: 1}


def test_a_view_read_of_the_wrong_type_fails_naming_feature_and_row():
    reads = [[ViewRead(Status.PRESENT, 1, [2.0])], [ViewRead(Status.PRESENT, 1, ["text"])]]
    with pytest.raises(GraneroError, match="feature 'v__x' of entity row 1: value 'text' cannot"):
        encode_reads(reads, ["v__x"], [[value_writer("float64")]])


@pytest.mark.parametrize("element", SCALARS)
def test_null_list_elements_keep_their_positions(element):
    items = [None, *SAMPLES[f"list<{element}>"], None]
    encoded = value_encoder(f"list<{element}>")(items).SerializeToString()
    assert decode_value(Value.FromString(encoded)) == items


def test_entity_rows_decode_every_key_to_its_python_value():
    rows = [EntityRow(keys={"driver_id": Value(int64_val=7), "zone": Value(int32_val=3),
                            "at": Value(timestamp_val=to_micros(MOMENT)), "missing": Value()})]
    assert decode_entity_rows(rows) == [{"driver_id": 7, "zone": 3, "at": MOMENT, "missing": None}]


def test_client_keys_encode_by_python_type():
    assert encode_key(True).WhichOneof("kind") == "bool_val"
    assert encode_key(5).int64_val == 5
    assert encode_key(MOMENT).timestamp_val == to_micros(MOMENT)
    assert encode_entity_rows([{"k": b"x"}])[0].keys["k"].bytes_val == b"x"
    with pytest.raises(InvalidRequest, match="join key value 1.5 of type float cannot be sent"):
        encode_key(1.5)


# -- values no Python value stands for ------------------------------------------------------------

FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
MALFORMED = {
    "timestamp before year 1": (Value(timestamp_val=to_micros(FIRST) - 1), "timestamp -62135596800000001"),
    "timestamp after 9999": (Value(timestamp_val=to_micros(LAST) + 1), "timestamp 253402300800000000"),
    "timestamp list element": (Value(timestamp_list_val={"val": [0, -(2**63)]}),
                               "timestamp -9223372036854775808"),
    "null position past the end": (Value(int64_list_val={"val": [1, 2], "null_positions": [2]}),
                                   "null position 2 is past the end of its 2-element int64_list_val"),
    "null position in an empty list": (Value(string_list_val={"null_positions": [0]}),
                                       "null position 0 is past the end of its 0-element"),
}


@pytest.mark.parametrize(("value", "message"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_value_no_python_value_stands_for_is_invalid_naming_the_field(value, message):
    with pytest.raises(InvalidRequest, match=f"^features\\[3\\]: {message}"):
        decode_value(value, "features[3]")


def test_the_datetime_range_ends_decode():
    assert decode_value(Value(timestamp_list_val={"val": [to_micros(FIRST), to_micros(LAST)]})) == [
        FIRST, LAST]


def test_a_malformed_key_names_its_entity_row_and_join_key():
    good = EntityRow(keys={"driver_id": Value(int64_val=1)})
    bad = EntityRow(keys={"driver_id": Value(int64_val=1), "at": Value(timestamp_val=2**62)})
    with pytest.raises(InvalidRequest, match="^entity row 2, join key 'at': timestamp 4611686018"):
        decode_entity_rows([good, good, bad])


def test_a_malformed_key_column_names_its_key():
    from granero.serving.columnar import decode_entity_columns

    column = Value(bool_list_val={"val": [True], "null_positions": [1]})
    with pytest.raises(InvalidRequest, match=r"^entity_columns\['ok'\]: null position 1 is past"):
        decode_entity_columns({"ok": column})


@settings(max_examples=2000, derandomize=True, database=None)
@given(value=VALUES)
def test_any_value_decodes_or_is_invalid_request_exactly_when_malformed(value):
    try:
        decode_value(value, "v")
    except InvalidRequest:
        assert malformed(value)
    else:
        assert not malformed(value)
