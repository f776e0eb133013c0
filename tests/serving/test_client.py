"""The client: the library's result type, columnar input, and gRPC errors as Granero errors."""

from __future__ import annotations

import pytest

from granero.errors import InvalidRequest, NotFound, OnlineStoreUnavailable
from granero.serving.client import Client
from tests.conftest import free_port

pytestmark = pytest.mark.redis


def test_columns_and_rows_give_the_same_result(client):
    features = ["driver_stats:trips"]
    by_columns = client.get_online_features({"driver_id": [1, 2]}, features=features)
    assert by_columns == client.get_online_features([{"driver_id": 1}, {"driver_id": 2}], features)
    assert by_columns.to_dict() == {"driver_stats__trips": [12, 3]}


def test_request_errors_carry_the_servers_message(client):
    with pytest.raises(InvalidRequest) as error:
        client.get_online_features([{"driver_id": 1}], features=["driver_stats:nope"])
    assert str(error.value) == ("feature view 'driver_stats' has no feature 'nope'; "
                                "it has ['conv_rate', 'trips']")
    with pytest.raises(NotFound, match="no feature view named 'nope'"):
        client.describe_feature_view("nope")


def test_bad_input_fails_before_anything_is_sent(client):
    with pytest.raises(InvalidRequest, match="not both or neither"):
        client.get_online_features([{"driver_id": 1}])
    with pytest.raises(InvalidRequest, match="entity columns have different lengths"):
        client.get_online_features({"zone": [1, 2], "vehicle": ["car"]}, feature_service="ranker")


def test_no_server_is_online_store_unavailable_naming_the_target():
    target = f"127.0.0.1:{free_port()}"
    with Client(target, timeout=5) as client, pytest.raises(
            OnlineStoreUnavailable, match=f"{target}: UNAVAILABLE"):
        client.server_info()


def test_join_keys_come_from_the_servers_registry(client):
    assert client.join_keys(feature_service="ranker") == {
        "driver_id": "int64", "zone": "int32", "vehicle": "string"}
    assert client.join_keys(features=["route_stats:eta"]) == {"zone": "int32", "vehicle": "string"}
    with pytest.raises(InvalidRequest) as error:
        client.join_keys(feature_service="nope")
    assert str(error.value) == "unknown feature service 'nope'; known: ['ranker']"
