"""The COLUMNS layout: entity key columns in, one packed list per feature out.

The ROWS layout costs a protobuf ``Value`` per value (about 0.4 us each in Python: 800 us for 100
entities x 20 features); here a whole column is one ``extend`` from the list ``read_columns``
answers (numpy decoded it in one pass), so the cost grows with the features, barely with the
entities. For a single entity the two layouts cost about the same.

Per feature view the response carries the entity rows' statuses (PRESENT, NOT_FOUND,
OUTSIDE_MAX_AGE) and event timestamps once; a value's own status is its view's, except
NULL_VALUE where the view's is PRESENT and the value is null (its position is in the column's
``null_positions``). Values of ``list<...>`` dtypes cannot share one list, so those columns
carry a Value per entity row instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from granero.errors import InvalidRequest
from granero.online.encoding import to_micros
from granero.online.lookup import COLUMN_STATUSES, OnlineResult, ViewColumns, ViewReader
from granero.serving.convert import decode_value, value_encoder
from granero.serving.v1.serving_pb2 import (
    FeatureColumn,
    FieldStatus,
    GetOnlineFeaturesResponse,
)
from granero.serving.v1.value_pb2 import Value
from granero.types import list_element, proto_field

Filler = Callable[[FeatureColumn, list[Any], list[int]], None]
"""Fills a FeatureColumn from a column of ``ViewColumns.values`` and its ``missing`` rows."""

_CODES = [FieldStatus.Value(status.value) for status in COLUMN_STATUSES]
_VIEW_CODE = {code: index for index, code in enumerate(_CODES)}
"""A view status on the wire -> its index in COLUMN_STATUSES."""
_PRESENT = FieldStatus.PRESENT
_ZERO = {"string_list_val": "", "bytes_list_val": b""}
_KEY_LISTS: dict[type, tuple[str, Callable[[Any], Any] | None]] = {
    int: ("int64_list_val", None), str: ("string_list_val", None),
    bytes: ("bytes_list_val", None), bool: ("bool_list_val", None),
    datetime: ("timestamp_list_val", to_micros),
}
"""Join key values of one Python type -> the list Value field that carries them."""


# -- server: filling the response -----------------------------------------------------------------


def column_filler(dtype: str) -> Filler:
    """How to fill a feature's column of ``dtype`` (built once per request shape)."""
    if list_element(dtype) is not None:
        return _list_filler(value_encoder(dtype))
    field = proto_field(dtype).replace("_val", "_list_val")
    zero = _ZERO.get(field)

    def fill(column: FeatureColumn, values: list[Any], missing: list[int]) -> None:
        packed = getattr(column.values, field)
        if values:
            packed.val.extend(values)
        else:  # the kind tells the client the type, even of an empty column
            packed.SetInParent()
        if missing:
            packed.null_positions.extend(missing)

    def fill_text(column: FeatureColumn, values: list[Any], missing: list[int]) -> None:
        fill(column, [zero if v is None else v for v in values] if missing else values, missing)

    return fill if zero is None else fill_text


def _list_filler(encode: Callable[[Any], Value]) -> Filler:
    def fill(column: FeatureColumn, values: list[Any], missing: list[int]) -> None:
        add = column.list_values.add
        for value in values:
            if value is None:
                add()
            else:
                add().CopyFrom(encode(value))

    return fill


def encode_columns(
    names: list[str], readers: Sequence[ViewReader], reads: list[ViewColumns],
    fillers: list[list[Filler]],
) -> tuple[GetOnlineFeaturesResponse, Counter[int]]:
    """The COLUMNS response for ``read_columns``' answer, and how many values had each status
    code. ``fillers``: per view, per requested feature."""
    response = GetOnlineFeaturesResponse(feature_names=names)
    add_column, counts = response.columns.add, Counter[int]()
    for index, (reader, read, view_fillers) in enumerate(
            zip(readers, reads, fillers, strict=True)):
        view = response.views.add(name=reader.name)
        view.statuses.extend([_CODES[status] for status in read.status])
        view.event_timestamps.extend(read.event_micros)
        for fill, values, missing in zip(view_fillers, read.values, read.missing, strict=True):
            column = add_column()
            if index:  # 0, the default, is not sent
                column.view = index
            fill(column, values, missing)
        counts.update(_status_counts(read))
    return response, +counts


def _status_counts(read: ViewColumns) -> dict[int, int]:
    features, status = len(read.values), read.status
    nulls = sum(1 for missing in read.missing for row in missing if status[row] == 0)
    counts = {code: status.count(i) * features for i, code in enumerate(_CODES)}
    counts[_PRESENT] -= nulls
    counts[FieldStatus.NULL_VALUE] = nulls
    return counts


def decode_entity_columns(columns: Mapping[str, Value]) -> dict[str, list[Any]]:
    """``entity_columns`` of a request as Python lists (the lookup checks their values)."""
    decoded = {}
    for key, value in columns.items():
        kind = value.WhichOneof("kind")
        if kind is None or not kind.endswith("_list_val"):
            raise InvalidRequest(f"entity_columns[{key!r}] must be a list Value (int64_list_val, "
                                 f"string_list_val...), got {kind or 'no value'}")
        decoded[key] = decode_value(value, f"entity_columns[{key!r}]")
    return decoded


# -- client: the request's key columns, the response's values --------------------------------------


def encode_key_columns(columns: Mapping[str, Sequence[Any]]) -> dict[str, Value] | None:
    """Key columns as list Values; None when a column mixes types or holds a type without a list
    field (numpy ints, bytearray...): then send rows, which ``encode_key`` handles."""
    encoded = {}
    for key, values in columns.items():
        kinds = {type(v) for v in values}
        if len(kinds) != 1 or next(iter(kinds)) not in _KEY_LISTS:
            return None
        field, convert = _KEY_LISTS[next(iter(kinds))]
        items = [convert(v) for v in values] if convert else values
        encoded[key] = Value(**{field: {"val": items}})
    return encoded


def decode_columns_response(response: GetOnlineFeaturesResponse) -> OnlineResult:
    """The library's OnlineResult for a COLUMNS response (equal to its ROWS twin's), built from
    the columns: no FeatureValue per value."""
    views = [([_VIEW_CODE[code] for code in view.statuses], list(view.event_timestamps))
             for view in response.views]
    columns = list(response.columns)
    return OnlineResult(
        list(response.feature_names),
        [_column_values(column) for column in columns],
        [views[column.view][0] for column in columns],
        [views[column.view][1] for column in columns],
    )


def _column_values(column: FeatureColumn) -> list[Any]:
    """A feature's values, None where it has none (null, or its view's row withheld)."""
    if column.values.WhichOneof("kind") is None:
        return [decode_value(v) for v in column.list_values]
    return decode_value(column.values)
