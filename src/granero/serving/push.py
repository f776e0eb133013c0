"""PushFeatures on the wire: the request's columns in and out, and the push target's names.

Columns travel as ``RequestColumn``s (a packed list Value per column, or a Value per row for
list dtypes), decoded by the same code as request-context columns; the values keep their wire
types and ``granero.push`` judges them against the view, as it judges an in-process push. The
row count is checked against ``serving.limits.max_push_rows`` before anything is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from granero.errors import InvalidRequest
from granero.serving.request_context import (
    check_column_sizes,
    decode_request_columns,
    encode_request_columns,
)
from granero.serving.v1 import serving_pb2 as pb

if TYPE_CHECKING:
    from granero.serving.limits import ServingLimits

TARGET_NAMES = {pb.ONLINE_AND_OFFLINE: "online_and_offline", pb.ONLINE: "online", pb.OFFLINE: "offline"}
TARGET_CODES = {name: code for code, name in TARGET_NAMES.items()}


def decoded_columns(request: pb.PushFeaturesRequest, limits: ServingLimits) -> dict[str, list[Any]]:
    """The request's columns as Python lists, within the limits (checked before decoding)."""
    limits.check_name("feature_view", request.feature_view)
    limits.check_name("batch_id", request.batch_id)
    check_column_sizes(request.columns, "columns", limits, "max_push_rows")
    columns = decode_request_columns(request.columns, "columns")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(f"push to feature view {request.feature_view!r}: columns have "
                             f"different lengths {lengths}")
    return columns


def target_name(code: int) -> str:
    if code not in TARGET_NAMES:
        raise InvalidRequest(f"unknown push target {code}; use ONLINE_AND_OFFLINE (0), ONLINE (1) "
                             "or OFFLINE (2)")
    return TARGET_NAMES[code]


def push_request(view: str, columns: Mapping[str, list[Any]], to: str,
                 batch_id: str | None) -> pb.PushFeaturesRequest:
    """The client's request: each column packed when its values share a wire type."""
    if to not in TARGET_CODES:
        raise InvalidRequest(f"push to feature view {view!r}: to must be one of "
                             f"{tuple(TARGET_CODES)}, not {to!r}")
    request = pb.PushFeaturesRequest(feature_view=view, batch_id=batch_id or "",
                                     to=TARGET_CODES[to])  # type: ignore[arg-type]
    for name, column in encode_request_columns(columns).items():
        request.columns[name].CopyFrom(column)
    return request
