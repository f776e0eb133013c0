"""The single dtype mapping to Spark, Arrow and protobuf."""

from __future__ import annotations

import pyarrow as pa
import pytest

from granero import types


@pytest.mark.parametrize("dtype, ddl, arrow, proto", [
    ("int32", "int", pa.int32(), "int32_val"),
    ("int64", "bigint", pa.int64(), "int64_val"),
    ("float32", "float", pa.float32(), "float_val"),
    ("float64", "double", pa.float64(), "double_val"),
    ("bool", "boolean", pa.bool_(), "bool_val"),
    ("string", "string", pa.string(), "string_val"),
    ("bytes", "binary", pa.binary(), "bytes_val"),
    ("timestamp", "timestamp", pa.timestamp("us", tz="UTC"), "timestamp_val"),
    ("list<float64>", "array<double>", pa.list_(pa.float64()), "double_list_val"),
    ("list<timestamp>", "array<timestamp>", pa.list_(pa.timestamp("us", tz="UTC")), "timestamp_list_val"),
])
def test_mapping(dtype, ddl, arrow, proto):
    assert types.spark_ddl(dtype) == ddl
    assert types.arrow_type(dtype) == arrow
    assert types.proto_field(dtype) == proto


def test_every_proto_field_exists_in_the_value_message():
    from granero.serving.v1 import value_pb2

    fields = set(value_pb2.Value.DESCRIPTOR.fields_by_name)
    for scalar in types.SCALARS:
        assert types.proto_field(scalar) in fields
        assert types.proto_field(f"list<{scalar}>") in fields


@pytest.mark.parametrize("text", ["int65", "list<list<int64>>", "map<string,int64>", ""])
def test_unknown_dtypes_are_rejected(text):
    with pytest.raises(ValueError, match="unknown dtype"):
        types.parse_dtype(text)


def test_dtypes_are_normalised():
    assert types.parse_dtype(" List<Float64> ") == "list<float64>"
