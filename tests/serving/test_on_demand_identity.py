"""Code identity in the server, and ``granero get-online --request``.

A server whose repo files hold another transform than the one applied refuses that view
(FAILED_PRECONDITION naming it), turns the health of each feature service serving it
NOT_SERVING, sets ``granero_serving_transform_refused{view}``, and keeps serving everything else;
once the new code is applied it follows the registry and serves it, SERVING again.
"""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2
from typer.testing import CliRunner

from granero.cli.main import app
from granero.feature_store import FeatureStore
from granero.serving.client import Client
from granero.serving.config import ServingConfig
from granero.serving.convert import decode_result
from granero.serving.health import NOT_SERVING, SERVING
from granero.serving.server import build_server
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Value
from tests.conftest import scaled
from tests.serving.on_demand_repo import applied_store

pytestmark = pytest.mark.redis

TIMEOUT = scaled(10)
runner = CliRunner()


@pytest.fixture
def repo_store(tmp_path, redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/9"
    with applied_store(tmp_path / "repo", url) as store:
        yield store


def echo_request() -> pb.GetOnlineFeaturesRequest:
    request = pb.GetOnlineFeaturesRequest(feature_service="echo_service")
    request.entities.add(request_values={"fare": Value(double_val=2.0)})
    return request


def health_of(handle, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    return handle.health.Check(request, None).status


def refused_gauge(handle, view: str) -> float:
    for metric in handle.servicer.transform_health.refused.collect():
        for sample in metric.samples:
            if sample.labels.get("view") == view:
                return sample.value
    raise AssertionError(f"no gauge sample for {view}")


def edit_echo(store: FeatureStore, factor: str) -> None:
    path = store.repo_path / "on_demand.py"
    path.write_text(path.read_text().replace('pc.multiply(columns["fare"], 2.0)',
                                             f'pc.multiply(columns["fare"], {factor})'))


def test_a_transform_changed_without_apply_is_refused_until_applied(repo_store):
    edit_echo(repo_store, "3.0")
    config = ServingConfig(port=0, registry_refresh_seconds=0)
    with build_server(FeatureStore(repo_store.repo_path), config) as handle, \
            grpc.insecure_channel(handle.address) as channel:
        stub = FeatureServingStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetOnlineFeatures(echo_request(), timeout=TIMEOUT)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "'echo'" in refused.value.details()
        assert "is not the code applied" in refused.value.details()
        assert health_of(handle, "granero.feature_service.echo_service") == NOT_SERVING
        assert health_of(handle, "granero.feature_service.trip_service") == SERVING
        assert health_of(handle, "") == SERVING  # the store answers: other features are served
        assert refused_gauge(handle, "echo") == 1 and refused_gauge(handle, "trip_features") == 0
        other = pb.GetOnlineFeaturesRequest(feature_service="fragile_service")
        other.entities.add(request_values={"fare": Value(double_val=2.0)})
        assert decode_result(stub.GetOnlineFeatures(other, timeout=TIMEOUT)).rows[0][0].value == 2.0

        FeatureStore(repo_store.repo_path).apply()
        answer = decode_result(stub.GetOnlineFeatures(echo_request(), timeout=TIMEOUT))
        assert answer.rows[0][0].value == 6.0  # the applied code, now loaded
        assert health_of(handle, "granero.feature_service.echo_service") == SERVING
        assert refused_gauge(handle, "echo") == 0


def test_the_library_refuses_a_changed_transform_too(repo_store):
    from granero.errors import TransformCodeChanged

    edit_echo(repo_store, "4.0")
    with FeatureStore(repo_store.repo_path) as store, \
            pytest.raises(TransformCodeChanged, match="'echo'"):
        store.get_online_features([{}], ["echo:double_fare"], request_data={"fare": [1.0]})


def test_a_server_whose_repo_files_do_not_load_refuses_every_on_demand_view(repo_store):
    (repo_store.repo_path / "on_demand.py").write_text("raise RuntimeError('broken image')\n")
    with build_server(FeatureStore(repo_store.repo_path), ServingConfig(port=0)) as handle, \
            Client(handle.address) as client:
        with pytest.raises(Exception, match="do not load") as refused:
            client.get_online_features([{}], ["echo:*"], request_data={"fare": [1.0]})
        assert "FAILED_PRECONDITION" in str(refused.value)
        assert health_of(handle, "granero.feature_service.trip_service") == NOT_SERVING


# -- granero get-online --request -------------------------------------------------------------------


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_get_online_takes_request_values_in_process_and_over_grpc(repo_store):
    args = ["get-online", "-r", str(repo_store.repo_path), "-s", "trip_service",
            "-e", "driver_id=1,zone=1,vehicle=car", "-e", "driver_id=4,zone=1,vehicle=car",
            "--request", "fare=8,tag=a,stops=[1, 2]", "--request", "fare=3.5,tag=null,stops=null",
            "--json"]
    local = invoke(*args)
    assert local.exit_code == 0, local.stderr
    rows = json.loads(local.stdout)["rows"]
    assert rows[0]["features"]["trip_features__fare_per_trip"]["value"] == 2.0
    assert rows[0]["features"]["trip_features__stop_count"]["value"] == 2
    assert rows[1]["features"]["trip_features__score"]["status"] == "NOT_FOUND"
    with build_server(repo_store, ServingConfig(port=0)) as handle:
        remote = invoke(*args, "--target", handle.address)
    assert remote.exit_code == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_get_online_of_request_values_only_needs_no_entity(repo_store):
    result = invoke("get-online", "-r", str(repo_store.repo_path), "-f", "echo:double_fare",
                    "--request", "fare=1.25", "--request", "fare=null", "--json")
    assert result.exit_code == 0, result.stderr
    values = [row["features"]["echo__double_fare"] for row in json.loads(result.stdout)["rows"]]
    assert [(v["value"], v["status"]) for v in values] == [(2.5, "PRESENT"), (None, "NULL_VALUE")]


@pytest.mark.parametrize(("request_text", "words"), [
    ("fare=abc", "--request fare='abc': not a valid float64"),
    ("speed=1", "'speed' is not a request field"),
    ("fare", "must look like FIELD=VALUE"),
])
def test_get_online_refuses_bad_request_values_with_exit_code_2(repo_store, request_text, words):
    result = runner.invoke(app, ["get-online", "-r", str(repo_store.repo_path), "-f", "echo:*",
                                 "--request", request_text])
    assert result.exit_code == 2 and words in result.stderr, result.stderr


def test_get_online_without_a_needed_request_value_names_it(repo_store):
    result = runner.invoke(app, ["get-online", "-r", str(repo_store.repo_path), "-s",
                                 "trip_service", "-e", "driver_id=1,zone=1,vehicle=car"])
    assert result.exit_code == 2
    assert "missing request value 'fare' (float64)" in result.stderr
