"""Feature value types, and their one mapping to Spark, Arrow and protobuf.

A dtype is written as a plain string: a scalar name (``int64``) or a list of a scalar
(``list<float64>``). Every other layer asks this module how a dtype looks in its world, so a new
type is added here and nowhere else. Spark and Arrow are imported only inside the functions that
need them: importing the definition language must stay free of heavy dependencies.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

SCALARS = ("int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp")

# Name of the protobuf ``Value`` oneof field per scalar (lists use ``<scalar>_list_val``).
_PROTO_FIELD = {
    "int32": "int32_val",
    "int64": "int64_val",
    "float32": "float_val",
    "float64": "double_val",
    "bool": "bool_val",
    "string": "string_val",
    "bytes": "bytes_val",
    "timestamp": "timestamp_val",
}

_SPARK_DDL = {
    "int32": "int",
    "int64": "bigint",
    "float32": "float",
    "float64": "double",
    "bool": "boolean",
    "string": "string",
    "bytes": "binary",
    "timestamp": "timestamp",
}


def parse_dtype(text: str) -> str:
    """Normalise and check a dtype string; raises ValueError naming the valid choices."""
    dtype = text.strip().lower().replace(" ", "")
    element = list_element(dtype)
    if (element or dtype) in SCALARS:
        return dtype
    choices = ", ".join(SCALARS)
    raise ValueError(f"unknown dtype {text!r}; use one of {choices} or list<one of them>")


def list_element(dtype: str) -> str | None:
    """The element type of a ``list<...>`` dtype, or None for a scalar."""
    if dtype.startswith("list<") and dtype.endswith(">"):
        return dtype[5:-1]
    return None


DType = Annotated[str, AfterValidator(parse_dtype)]
"""A validated dtype string, for use as a pydantic field type."""


def spark_ddl(dtype: str) -> str:
    """Spark SQL DDL type for a dtype, e.g. ``array<double>``."""
    element = list_element(dtype)
    return f"array<{_SPARK_DDL[element]}>" if element else _SPARK_DDL[dtype]


def spark_type(dtype: str) -> Any:
    """The pyspark DataType for a dtype."""
    from pyspark.sql.types import _parse_datatype_string

    return _parse_datatype_string(spark_ddl(dtype))


def arrow_type(dtype: str) -> Any:
    """The pyarrow DataType for a dtype (timestamps are UTC microseconds, as Spark writes them)."""
    import pyarrow as pa

    scalars = {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "bytes": pa.binary(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    element = list_element(dtype)
    return pa.list_(scalars[element]) if element else scalars[dtype]


def proto_field(dtype: str) -> str:
    """Name of the field of the protobuf ``Value`` oneof that carries this dtype."""
    element = list_element(dtype)
    return f"{_PROTO_FIELD[element][:-4]}_list_val" if element else _PROTO_FIELD[dtype]
