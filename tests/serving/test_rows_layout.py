"""The ROWS layout built from wire bytes (``serving.rows``) equals the value-by-value encoder and
the COLUMNS layout, on random rows of every dtype (lists with null elements, nulls, stale rows,
unknown entities) written to a real Redis and read back through a real server."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero.errors import GraneroError
from granero.online.encoding import to_micros
from granero.online.lookup import ViewColumns, ViewReader, read_columns, read_views
from granero.serving.columnar import decode_columns_response
from granero.serving.convert import decode_result, encode_reads, value_writer
from granero.serving.plan import plan_request
from granero.serving.rows import encode_rows, varint
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.types import SCALARS
from tests.serving.conftest import DTYPES, FRESH, MAX_BATCH, feature_name, write_rows

pytestmark = pytest.mark.redis

STALE_FOR_ALL_TYPES = datetime.now(UTC) - timedelta(days=3)
"""Older than all_types' 1-day ttl, far from its edge."""
IDS = itertools.count(100_000)
"""Fresh entity ids per example: rows are written if newer, so ids are never reused."""
FEATURES = [f"all_types:{feature_name(d)}" for d in DTYPES] + [
    "driver_stats:conv_rate", "driver_stats:trips", "route_stats:eta", "route_stats:conv_rate"]

moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.just(UTC))
SCALAR_VALUES = {
    "int32": st.integers(-(2**31), 2**31 - 1), "int64": st.integers(-(2**63), 2**63 - 1),
    "float32": st.floats(width=32), "float64": st.floats(), "bool": st.booleans(),
    "string": st.text(max_size=20), "bytes": st.binary(max_size=20), "timestamp": moments,
}


def values_of(dtype: str) -> st.SearchStrategy[Any]:
    if dtype in SCALAR_VALUES:
        return st.none() | SCALAR_VALUES[dtype]
    element = dtype[len("list<"):-1]
    return st.none() | st.lists(st.none() | SCALAR_VALUES[element], max_size=4)


all_types_rows = st.fixed_dictionaries({
    "event_timestamp": st.sampled_from([FRESH, STALE_FOR_ALL_TYPES]),
    **{feature_name(d): values_of(d) for d in DTYPES},
})
driver_rows = st.fixed_dictionaries({
    "event_timestamp": st.just(FRESH), "conv_rate": values_of("float64"),
    "trips": values_of("int64")})


@st.composite
def lookups(draw: st.DrawFn) -> tuple[list[dict], list[dict], list[int], list[str]]:
    """Rows to write (some entities get none) and a request: ids in random order, repeats
    allowed, a random non-empty selection of features."""
    ids = [next(IDS) for _ in range(draw(st.integers(1, 30)))]
    typed = [{"driver_id": i, **draw(all_types_rows)} for i in ids if draw(st.booleans())]
    stats = [{"driver_id": i, **draw(driver_rows)} for i in ids if draw(st.booleans())]
    asked = draw(st.lists(st.sampled_from(ids), min_size=0, max_size=MAX_BATCH))
    features = draw(st.lists(st.sampled_from(FEATURES), min_size=1, unique=True))
    return typed, stats, asked, features


def comparable(value: Any) -> Any:
    """NaN equal to NaN, recursively, so results compare by what they carry."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    return value


def as_rows(ids: list[int]) -> list[dict[str, Any]]:
    return [{"driver_id": i, "zone": i % 3, "vehicle": "car"} for i in ids]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lookups())
def test_rows_layout_equals_the_value_by_value_encoder_and_columns(store, server, case):
    typed, stats, asked, features = case
    for view, rows in (("all_types", typed), ("driver_stats", stats)):
        if rows:
            write_rows(store, view, rows)
    plan = plan_request(store.registered(), tuple(features), True)
    rows, now = as_rows(asked), to_micros(datetime.now(UTC))
    online = store.online_store
    old, old_counts = encode_reads(read_views(online, plan.readers, rows, now),
                                   plan.feature_names, plan.writers)
    columns = {key: [row[key] for row in rows] for key in ("driver_id", "zone", "vehicle")}
    new, new_counts = encode_rows(plan.feature_names,
                                  read_columns(online, plan.readers, columns, now), plan.dtypes)
    assert new.SerializeToString(deterministic=True) == old.SerializeToString(deterministic=True)
    assert new_counts == old_counts

    stub = FeatureServingStub(server_channel(server))
    request = pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=features))
    request.entities.extend(
        pb.EntityRow(keys={"driver_id": value(int64_val=r["driver_id"]),
                           "zone": value(int64_val=r["zone"]),
                           "vehicle": value(string_val=r["vehicle"])}) for r in rows)
    by_rows = decode_result(stub.GetOnlineFeatures(request, timeout=30))
    request.layout = pb.COLUMNS
    by_columns = decode_columns_response(stub.GetOnlineFeatures(request, timeout=30))
    assert comparable(by_rows.to_dict()) == comparable(by_columns.to_dict())
    assert by_rows.statuses == by_columns.statuses
    assert by_rows.event_micros == by_columns.event_micros
    assert comparable(by_rows.to_dict()) == comparable(decode_result(old).to_dict())


def value(**kind: Any) -> Any:
    from granero.serving.v1.value_pb2 import Value

    return Value(**kind)


_CHANNELS: dict[str, Any] = {}


def server_channel(server: Any) -> Any:
    import grpc

    if server.address not in _CHANNELS:
        _CHANNELS[server.address] = grpc.insecure_channel(server.address)
    return _CHANNELS[server.address]


@given(st.integers(-(2**63), 2**64 - 1))
def test_varint_is_protobufs(number):
    from granero.serving.v1.value_pb2 import Value

    expected = Value(int64_val=number if number < 2**63 else number - 2**64).SerializeToString()
    assert b"\x10" + varint(number) == expected


@pytest.mark.parametrize("dtype", ["int32", "string", "bytes", "float64", "bool"])
def test_a_value_that_cannot_go_as_its_dtype_is_named_with_its_row(dtype):
    wrong = {"int32": 2**40, "string": b"raw", "bytes": "text", "float64": "1.5",
             "bool": "yes"}[dtype]
    count = 20  # past ROW_BY_ROW_BELOW: the numpy path too
    zero = {"int32": 0, "float64": 0.0, "bool": False, "string": "", "bytes": b""}[dtype]
    values = [zero] * count
    values[7] = wrong
    read = ViewColumns([0] * count, [1] * count, [values], [[]])
    with pytest.raises(GraneroError, match=f"feature 'v__x' of entity row 7: value {wrong!r}"):
        encode_rows(["v__x"], [read], [[dtype]])


def test_every_dtype_is_covered():
    assert {d for d in DTYPES} >= {*SCALARS, *(f"list<{s}>" for s in SCALARS)}
    assert all(value_writer(d) for d in DTYPES)
    assert ViewReader  # the oracle reads rows with ViewReader.read (read_views)
