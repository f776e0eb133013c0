"""The server end to end: a real gRPC server on 127.0.0.1 reading a real redis-server."""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from granero.online.lookup import Status
from granero.serving.info import Column, FeatureServiceInfo
from granero.serving.servicer import SERVICE_NAME
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Value
from granero.types import SCALARS
from tests.serving.conftest import DTYPES, FRESH, MAX_BATCH, SAMPLES, STALE, feature_name

pytestmark = pytest.mark.redis

DRIVER_FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]
P, N, OLD, NV = Status.PRESENT, Status.NOT_FOUND, Status.OUTSIDE_MAX_AGE, Status.NULL_VALUE


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as channel:
        yield channel


def test_every_dtype_is_served_with_its_type(client):
    result = client.get_online_features([{"driver_id": 1}], features=["all_types:*"])
    assert result.feature_names == [f"all_types__{feature_name(d)}" for d in DTYPES]
    assert [v.value for v in result.rows[0]] == [SAMPLES[d] for d in DTYPES]
    assert [type(v.value) for v in result.rows[0]] == [type(SAMPLES[d]) for d in DTYPES]
    assert {(v.status, v.event_timestamp) for v in result.rows[0]} == {(P, FRESH)}


def test_a_row_of_nulls_is_null_value_for_every_dtype(client):
    result = client.get_online_features([{"driver_id": 2}], features=["all_types:*"])
    assert {(v.value, v.status) for v in result.rows[0]} == {(None, NV)}


def test_null_list_elements_are_served_in_place(client):
    lists = [f"all_types:{feature_name(f'list<{s}>')}" for s in SCALARS]
    result = client.get_online_features([{"driver_id": 3}], features=lists)
    assert [v.value for v in result.rows[0]] == [
        [None, *SAMPLES[f"list<{s}>"], None] for s in SCALARS]


def test_all_four_statuses_and_the_values_they_carry(client):
    result = client.get_online_features({"driver_id": [1, 2, 3, 4]}, features=DRIVER_FEATURES)
    assert [[v.status for v in row] for row in result.rows] == [[P, P], [NV, P], [OLD, OLD], [N, N]]
    assert [[v.value for v in row] for row in result.rows] == [
        [0.9, 12], [None, 3], [None, None], [None, None]]
    assert [row[0].event_timestamp for row in result.rows] == [FRESH, FRESH, STALE, None]


def test_served_values_equal_the_library_lookup(client, store):
    rows = [{"driver_id": i} for i in (1, 2, 3, 4)]
    served = client.get_online_features(rows, features=["all_types:*", *DRIVER_FEATURES])
    assert served == store.get_online_features(rows, features=["all_types:*", *DRIVER_FEATURES])


def test_a_feature_service_serves_its_features_with_a_composite_key(client):
    row = {"driver_id": 1, "zone": 1, "vehicle": "car"}
    result = client.get_online_features([row], feature_service="ranker")
    assert result.feature_names == ["driver_stats__conv_rate", "route_stats__conv_rate",
                                    "route_stats__eta"]
    assert [v.value for v in result.rows[0]] == [0.9, 0.5, 7.5]
    by_refs = client.get_online_features(
        [row], features=["driver_stats:conv_rate", "route_stats:conv_rate", "route_stats:eta"])
    assert by_refs == result


def test_bare_feature_names_on_request(client):
    result = client.get_online_features([{"driver_id": 1}], features=DRIVER_FEATURES,
                                        full_feature_names=False)
    assert result.feature_names == ["conv_rate", "trips"]


def test_an_empty_batch_answers_the_names_only(client):
    result = client.get_online_features([], features=DRIVER_FEATURES)
    assert result.feature_names == ["driver_stats__conv_rate", "driver_stats__trips"]
    assert result.rows == []


def test_feature_services_are_listed_with_their_references(client):
    assert client.list_feature_services() == [FeatureServiceInfo(
        "ranker", "ranking model", "ml", {},
        ["driver_stats:conv_rate", "route_stats:conv_rate", "route_stats:eta"])]


def test_a_feature_view_is_described_with_typed_keys_and_features(client):
    view = client.describe_feature_view("driver_stats")
    assert (view.name, view.owner, view.tags, view.entities) == (
        "driver_stats", "supply", {"tier": "gold"}, ["driver"])
    assert view.join_keys == {"driver_id": "int64"}
    assert view.features == [Column("conv_rate", "float64", "accepted share"),
                             Column("trips", "int64")]
    assert view.ttl == timedelta(hours=1) and view.online
    assert list(client.describe_feature_view("route_stats").join_keys.items()) == [
        ("zone", "int32"), ("vehicle", "string")]


def test_server_info_names_the_project_and_registry_version(client, store):
    info, current = client.server_info(), store.registry.current()
    assert (info.project, info.registry_version, info.registry_hash) == (
        "serving_test", current.version, current.hash)
    assert info.registry_applied_at == current.applied_at


def test_health_reports_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_service(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)]
    listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    assert described.file_descriptor_response.file_descriptor_proto  # the schema, for grpcurl


def refs(*names: str) -> dict:
    return {"features": pb.FeatureList(refs=list(names))}


def rows(*keys: dict) -> list[pb.EntityRow]:
    return [pb.EntityRow(keys=k) for k in keys]


DRIVER_1 = {"driver_id": Value(int64_val=1)}
INVALID_REQUESTS = {
    "unknown view": (refs("nope:x"), rows(DRIVER_1),
                     "unknown feature view 'nope' in 'nope:x'; "
                     "known: ['all_types', 'driver_stats', 'driver_trips', 'route_stats']"),
    "unknown feature": (refs("driver_stats:nope"), rows(DRIVER_1),
                        "feature view 'driver_stats' has no feature 'nope'; "
                        "it has ['conv_rate', 'trips']"),
    "malformed ref": (refs("trips"), rows(DRIVER_1),
                      "feature reference 'trips' must look like 'view:feature' (or 'view:*')"),
    "unknown service": ({"feature_service": "nope"}, rows(DRIVER_1),
                        "unknown feature service 'nope'; known: ['ranker']"),
    "no selection": ({}, rows(DRIVER_1),
                     "give either feature references or a feature service, not both or neither"),
    "missing join key": (refs("driver_stats:trips"),
                         rows(DRIVER_1, {"driver": Value(int64_val=1)}),
                         "entity row 1: missing join key 'driver_id' of view 'driver_stats'"),
    "mistyped join key": (refs("driver_stats:trips"), rows({"driver_id": Value(string_val="1")}),
                          "entity row 0: join key 'driver_id' of view 'driver_stats' must be "
                          "int64, got str '1'"),
    "null join key": (refs("driver_stats:trips"), rows({"driver_id": Value()}),
                      "entity row 0: join key 'driver_id' of view 'driver_stats' must be "
                      "int64, got None"),
    "oversized batch": (refs("driver_stats:trips"), rows(*[DRIVER_1] * (MAX_BATCH + 1)),
                        f"batch of {MAX_BATCH + 1} entity rows exceeds max_batch_size {MAX_BATCH}"),
    "colliding bare names": ({"feature_service": "ranker", "full_feature_names": False},
                             rows({**DRIVER_1, "zone": Value(int32_val=1),
                                   "vehicle": Value(string_val="car")}),
                             "feature names ['conv_rate'] collide without view prefixes; "
                             "request full feature names"),
}


@pytest.mark.parametrize(("selection", "entities", "message"), list(INVALID_REQUESTS.values()),
                         ids=list(INVALID_REQUESTS))
def test_invalid_requests_are_invalid_argument_with_a_precise_message(
        channel, selection, entities, message):
    request = pb.GetOnlineFeaturesRequest(entities=entities, **selection)
    with pytest.raises(grpc.RpcError) as error:
        FeatureServingStub(channel).GetOnlineFeatures(request, timeout=5)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == message


def test_describing_an_unknown_view_is_not_found(channel):
    with pytest.raises(grpc.RpcError) as error:
        FeatureServingStub(channel).DescribeFeatureView(pb.DescribeFeatureViewRequest(name="x"))
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    assert error.value.details() == (
        "no feature view named 'x'; known: ['all_types', 'driver_stats', 'driver_trips', 'route_stats']")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_requests_by_code_and_values_by_status(server, client):
    before = scrape(server.metrics_port)
    client.get_online_features({"driver_id": [1, 2, 3, 4]}, features=DRIVER_FEATURES)
    with pytest.raises(Exception, match="unknown feature view"):
        client.get_online_features([{"driver_id": 1}], features=["nope:x"])
    after = scrape(server.metrics_port)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    method = "GetOnlineFeatures"
    assert delta("granero_serving_requests_total", method=method, code="OK") == 1
    assert delta("granero_serving_requests_total", method=method, code="INVALID_ARGUMENT") == 1
    assert delta("granero_serving_request_seconds_count", method=method) == 2
    assert {s: delta("granero_serving_feature_values_total", status=s)
            for s in ("PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND")} == {
        "PRESENT": 3, "NULL_VALUE": 1, "OUTSIDE_MAX_AGE": 2, "NOT_FOUND": 2}
    assert after[("granero_serving_registry_version", ())] >= 1


def test_concurrent_clients_all_get_correct_answers(client):
    expected = {1: [0.9, 12], 2: [None, 3], 3: [None, None], 4: [None, None]}

    def run(thread: int) -> list[bool]:
        results = []
        for i in range(200):
            driver = (thread + i) % 4 + 1
            answer = client.get_online_features([{"driver_id": driver}], features=DRIVER_FEATURES)
            results.append([v.value for v in answer.rows[0]] == expected[driver])
        return results

    with ThreadPoolExecutor(8) as pool:
        outcomes = [ok for thread in pool.map(run, range(8)) for ok in thread]
    assert len(outcomes) == 1600 and all(outcomes)
