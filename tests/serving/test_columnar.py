"""The COLUMNS layout and entity key columns over a real gRPC server: the same values, statuses
and event timestamps as the ROWS layout for every dtype, packed one list per feature."""

from __future__ import annotations

import grpc
import pytest

from granero.online.encoding import to_micros
from granero.online.lookup import ROW_BY_ROW_BELOW
from granero.serving.columnar import decode_columns_response, encode_key_columns
from granero.serving.convert import decode_result, encode_entity_rows
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Int64List, Value
from tests.serving.conftest import FRESH, MAX_BATCH, STALE

pytestmark = pytest.mark.redis

EVERYTHING = ["all_types:*", "driver_stats:conv_rate", "driver_stats:trips"]
DRIVERS = [1, 2, 3, 4]
MANY = ROW_BY_ROW_BELOW // len(DRIVERS) + 1
"""Copies of DRIVERS that the server decodes with numpy (fewer: row by row)."""


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield FeatureServingStub(channel)


def ask(stub, ids: list[int], layout: int, *, columns: bool = False, features=EVERYTHING):
    request = pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=features), layout=layout)
    if columns:
        request.entity_columns["driver_id"].int64_list_val.val.extend(ids)
    else:
        request.entities.extend(encode_entity_rows({"driver_id": i} for i in ids))
    return stub.GetOnlineFeatures(request, timeout=5)


@pytest.mark.parametrize("copies", [1, MANY], ids=["row by row", "numpy"])
@pytest.mark.parametrize("columns", [False, True], ids=["entity rows", "key columns"])
def test_columns_carry_what_rows_carry_for_every_dtype(stub, copies, columns):
    ids = DRIVERS * copies
    by_rows = decode_result(ask(stub, ids, pb.ROWS, columns=columns))
    by_columns = decode_columns_response(ask(stub, ids, pb.COLUMNS, columns=columns))
    assert len(by_rows.rows) == len(ids) and len(by_rows.feature_names) > 16
    assert by_columns == by_rows


@pytest.mark.parametrize("copies", [1, MANY], ids=["row by row", "numpy"])
def test_values_are_packed_per_feature_with_statuses_and_times_per_view(stub, copies):
    ids = DRIVERS * copies
    response = ask(stub, ids, pb.COLUMNS, columns=True, features=EVERYTHING[1:])
    assert not response.rows
    (view,) = response.views
    assert view.name == "driver_stats"
    assert list(view.statuses) == [pb.PRESENT, pb.PRESENT, pb.OUTSIDE_MAX_AGE, pb.NOT_FOUND] * copies
    fresh, stale = to_micros(FRESH), to_micros(STALE)
    assert list(view.event_timestamps) == [fresh, fresh, stale, 0] * copies
    conv_rate, trips = response.columns
    assert (conv_rate.view, trips.view) == (0, 0)
    assert list(conv_rate.values.double_list_val.val) == [0.9, 0.0, 0.0, 0.0] * copies
    assert list(trips.values.int64_list_val.val) == [12, 3, 0, 0] * copies
    every = range(0, len(ids), 4)
    assert list(conv_rate.values.double_list_val.null_positions) == sorted(
        i + k for i in every for k in (1, 2, 3))
    assert list(trips.values.int64_list_val.null_positions) == sorted(
        i + k for i in every for k in (2, 3))


def test_list_features_come_as_a_value_per_entity_row(stub):
    response = ask(stub, [1, 4], pb.COLUMNS, features=["all_types:list_int64_v"])
    (column,) = response.columns
    assert column.values.WhichOneof("kind") is None
    first, missing = column.list_values
    assert list(first.int64_list_val.val) == [2**40] and missing.WhichOneof("kind") is None


def test_an_empty_batch_answers_typed_empty_columns(stub):
    response = ask(stub, [], pb.COLUMNS, features=EVERYTHING[1:])
    assert list(response.feature_names) == ["driver_stats__conv_rate", "driver_stats__trips"]
    assert [v.name for v in response.views] == ["driver_stats"] and not response.views[0].statuses
    assert [c.values.WhichOneof("kind") for c in response.columns] == [
        "double_list_val", "int64_list_val"]
    assert decode_columns_response(response).rows == []


def test_the_client_sends_key_columns_only_when_each_has_one_type():
    assert encode_key_columns({"driver_id": [1, 2]}) == {
        "driver_id": Value(int64_list_val=Int64List(val=[1, 2]))}
    assert encode_key_columns({"driver_id": [1, "2"]}) is None
    assert encode_key_columns({"driver_id": [1, True]}) is None


def test_the_client_falls_back_to_rows_for_mixed_key_types(client):
    result = client.get_online_features([{"driver_id": 1}, {"driver_id": 2, "zone": 1}],
                                        features=["driver_stats:trips"])
    assert result.to_dict() == {"driver_stats__trips": [12, 3]}


def request_with(**fields) -> pb.GetOnlineFeaturesRequest:
    return pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=["driver_stats:trips"]),
                                       **fields)


def ids(*values) -> Value:
    return Value(int64_list_val=Int64List(val=list(values)))


INVALID = {
    "unknown layout": (request_with(layout=7), "unknown response layout 7; use ROWS (0) or COLUMNS (1)"),
    "rows and columns": (request_with(entity_columns={"driver_id": ids(1)},
                                      entities=encode_entity_rows([{"driver_id": 1}])),
                         "give entity rows as entities or as entity_columns, not both"),
    "scalar column": (request_with(entity_columns={"driver_id": Value(int64_val=1)}),
                      "entity_columns['driver_id'] must be a list Value (int64_list_val, "
                      "string_list_val...), got int64_val"),
    "uneven columns": (request_with(entity_columns={"driver_id": ids(1, 2), "zone": ids(1)}),
                       "entity columns have different lengths: {'driver_id': 2, 'zone': 1}"),
    "missing column": (request_with(entity_columns={"zone": ids(1)}, layout=pb.COLUMNS),
                       "entity columns: missing join key 'driver_id' of view 'driver_stats'"),
    "mistyped key": (request_with(entity_columns={"driver_id": Value(
        string_list_val={"val": ["1"]})}, layout=pb.COLUMNS),
        "entity row 0: join key 'driver_id' of view 'driver_stats' must be int64, got str '1'"),
    "oversized batch": (request_with(entity_columns={"driver_id": ids(*range(MAX_BATCH + 1))}),
                        f"batch of {MAX_BATCH + 1} entity rows exceeds max_batch_size {MAX_BATCH}"),
}


@pytest.mark.parametrize(("request_", "message"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_requests_are_invalid_argument_with_a_precise_message(stub, request_, message):
    with pytest.raises(grpc.RpcError) as error:
        stub.GetOnlineFeatures(request_, timeout=5)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == message


def test_both_layouts_count_the_same_values_by_status(server, stub):
    from tests.serving.test_server import scrape

    def counted(layout: int) -> dict[str, float]:
        before = scrape(server.metrics_port)
        ask(stub, DRIVERS * MANY, layout, features=EVERYTHING[1:])
        after = scrape(server.metrics_port)
        return {s: after.get(key, 0) - before.get(key, 0)
                for s in ("PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND")
                for key in [("granero_serving_feature_values_total", (("status", s),))]}

    expected = {"PRESENT": 3 * MANY, "NULL_VALUE": MANY, "OUTSIDE_MAX_AGE": 2 * MANY,
                "NOT_FOUND": 2 * MANY}
    assert counted(pb.ROWS) == expected
    assert counted(pb.COLUMNS) == expected
