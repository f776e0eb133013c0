"""``granero serve`` and ``granero get-online``: through typer's runner and as real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from granero.cli.main import app
from granero.serving.client import Client
from tests.conftest import scaled
from tests.serving.conftest import FRESH

pytestmark = pytest.mark.redis

runner = CliRunner()
DRIVER = ["-f", "driver_stats:conv_rate,driver_stats:trips"]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_get_online_in_process_as_json(serving_repo, store):
    result = invoke("get-online", "-r", str(serving_repo), *DRIVER, "-e", "driver_id=1",
                    "-e", "driver_id=4", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["feature_names"] == ["driver_stats__conv_rate", "driver_stats__trips"]
    first, missing = data["rows"]
    assert first["entity"] == {"driver_id": 1}
    assert first["features"]["driver_stats__trips"] == {
        "value": 12, "status": "PRESENT", "event_timestamp": FRESH.isoformat()}
    assert {f["status"] for f in missing["features"].values()} == {"NOT_FOUND"}


def test_get_online_over_grpc_matches_in_process(serving_repo, server):
    args = ["get-online", "-s", "ranker", "-e", "driver_id=1,zone=1,vehicle=car", "--json"]
    remote = invoke(*args, "--target", server.address)
    assert remote.exit_code == 0, remote.stderr
    assert remote.stdout == invoke(*args, "-r", str(serving_repo)).stdout
    values = json.loads(remote.stdout)["rows"][0]["features"]
    assert [v["value"] for v in values.values()] == [0.9, 0.5, 7.5]


def test_get_online_prints_a_table_of_values_and_statuses(serving_repo, server):
    result = invoke("get-online", "--target", server.address, *DRIVER, "-e", "driver_id=2")
    assert result.exit_code == 0
    assert "NULL_VALUE" in result.stdout and "PRESENT" in result.stdout and "3" in result.stdout


@pytest.mark.parametrize(("entity", "message"), [
    ("driver_id=abc", "--entity driver_id='abc': not a valid int64"),
    ("driver=1", "--entity 'driver=1': 'driver' is not a join key of the requested features; "
                 "they need ['driver_id']"),
    ("driver_id", "--entity 'driver_id': 'driver_id' must look like KEY=VALUE"),
])
def test_get_online_rejects_bad_entities_with_exit_code_2(serving_repo, entity, message):
    result = invoke("get-online", "-r", str(serving_repo), *DRIVER, "-e", entity)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_get_online_needs_features_or_a_service(serving_repo):
    result = invoke("get-online", "-r", str(serving_repo), "-e", "driver_id=1")
    assert result.exit_code == 2 and "give --features or --service" in result.stderr


@pytest.mark.parametrize("json_mode", [True, False], ids=["json+SIGTERM", "human+SIGINT"])
def test_serve_as_a_real_process_until_a_signal(serving_repo, store, json_mode):
    granero = str(Path(sys.executable).parent / "granero")  # the installed console script
    command = [granero, "serve", "-r", str(serving_repo), "--port", "0", "--log-level", "debug",
               *(["--json"] if json_mode else [])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = process.stdout.readline()
        if json_mode:
            address = json.loads(first_line)["address"]
        else:
            address = re.search(r"on (127\.0\.0\.1:\d+)", first_line)[1]
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                               timeout=scaled(5))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with Client(address) as client:
            result = client.get_online_features([{"driver_id": 1}], ["driver_stats:trips"])
        assert result.rows[0][0].value == 12
        process.send_signal(signal.SIGTERM if json_mode else signal.SIGINT)
        stdout, stderr = process.communicate(timeout=scaled(30))
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line.get("method") == "GetOnlineFeatures" and line["code"] == "OK"
               for line in logged)
    assert ("stopped" in stdout) is not json_mode


def test_serve_with_two_workers_answers_and_drains_on_sigterm(serving_repo, store):
    granero = str(Path(sys.executable).parent / "granero")
    command = [granero, "serve", "-r", str(serving_repo), "--port", "0", "--workers", "2",
               "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(process.stdout.readline())
        assert len(set(info["pids"])) == 2
        for _ in range(4):  # a channel per client: connections spread over the workers
            with Client(info["address"]) as client:
                result = client.get_online_features([{"driver_id": 1}], ["driver_stats:trips"])
            assert result.rows[0][0].value == 12
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=scaled(60))
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    for pid in info["pids"]:  # the workers were drained and reaped, not orphaned
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_float32_values_are_shown_as_float32_in_tables_and_json(tmp_path, serving_url):
    from granero.feature_store import FeatureStore
    from tests.serving.conftest import write_repo, write_rows

    repo = write_repo(tmp_path / "repo", serving_url, project="float32_display")
    with FeatureStore(repo) as own:
        own.apply()
        write_rows(own, "route_stats", [{"zone": 9, "vehicle": "car", "event_timestamp": FRESH,
                                         "conv_rate": 1.2, "eta": 1.2}])
    lookup = ["get-online", "-r", str(repo), "-f", "route_stats:eta,route_stats:conv_rate",
              "-e", "zone=9,vehicle=car"]
    values = json.loads(invoke(*lookup, "--json").stdout)["rows"][0]["features"]
    assert values["route_stats__eta"]["value"] == 1.2  # the float32 1.2, not 1.2000000476837158
    assert values["route_stats__conv_rate"]["value"] == 1.2  # a float64 is left as it is
    table = invoke(*lookup).stdout
    assert "1.2" in table and "1.20000004" not in table


@pytest.mark.parametrize("target", [False, True], ids=["in-process", "over-grpc"])
@pytest.mark.parametrize("request_args", [
    ["-s", "nope"], ["-f", "nope:x"], ["-f", "driver_stats:nope"]],
    ids=["service", "view", "feature"])
def test_an_unknown_name_exits_8_like_every_unknown_named_object(
        serving_repo, server, target, request_args):
    where = ["--target", server.address] if target else ["-r", str(serving_repo)]
    result = invoke("get-online", *where, *request_args, "-e", "driver_id=1")
    assert result.exit_code == 8, result.output
    assert "nope" in result.stderr


def test_serve_on_a_port_in_use_exits_2_naming_the_address(serving_repo, store):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", "-r", str(serving_repo), "--port", str(port))
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in " ".join(result.stderr.split())
