"""The serving repo's aggregate view at the wall clock: the Python API, gRPC in both layouts and
``granero get-online`` (in process and over gRPC) give the same values and statuses; an entity
without events is PRESENT with count 0, never NOT_FOUND; values are evaluated at the request
time, which the event timestamp carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import grpc
import pytest
from typer.testing import CliRunner

from granero.cli.main import app
from granero.online.lookup import Status
from granero.serving.convert import decode_result, encode_entity_rows
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub

pytestmark = pytest.mark.redis

REFS = ["driver_trips:trips_1h", "driver_trips:fare_mean_1h", "driver_trips:fare_max_1d",
        "driver_trips:tier_last_1d"]
DRIVERS = [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": 3}]
EXPECTED = {  # see tests.serving.conftest.TRIP_EVENTS
    "driver_trips__trips_1h": [1, 0, 0],
    "driver_trips__fare_mean_1h": [7.5, None, None],
    "driver_trips__fare_max_1d": [7.5, None, None],
    "driver_trips__tier_last_1d": ["gold", "silver", None],
}
P, N = Status.PRESENT, Status.NULL_VALUE
STATUSES = [[P, P, P, P], [P, N, N, P], [P, N, N, N]]


def test_python_api_and_both_layouts_agree(store, client, server):
    before = datetime.now(UTC)
    in_process = store.get_online_features(DRIVERS, REFS)
    by_columns = client.get_online_features(DRIVERS, REFS)
    with grpc.insecure_channel(server.address) as channel:
        request = pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=REFS))
        request.entities.extend(encode_entity_rows(DRIVERS))
        by_rows = decode_result(FeatureServingStub(channel).GetOnlineFeatures(request, timeout=10))
    after = datetime.now(UTC)
    for result in (in_process, by_columns, by_rows):
        assert result.to_dict() == EXPECTED
        assert [[v.status for v in row] for row in result.rows] == STATUSES
        stamps = {v.event_timestamp for row in result.rows for v in row}
        assert len(stamps) == 1 and before <= stamps.pop() <= after  # the request's own time


def test_get_online_shows_aggregates_in_process_and_over_grpc(serving_repo, store, server):
    args = ["get-online", "-f", ",".join(REFS), "-e", "driver_id=1", "-e", "driver_id=3", "--json"]
    runner = CliRunner()
    local = runner.invoke(app, [*args, "-r", str(serving_repo)], catch_exceptions=False)
    remote = runner.invoke(app, [*args, "--target", server.address], catch_exceptions=False)
    assert local.exit_code == remote.exit_code == 0, (local.stderr, remote.stderr)
    for output in (local.stdout, remote.stdout):
        first, empty = json.loads(output)["rows"]
        assert {k: v["value"] for k, v in first["features"].items()} == {k: v[0] for k, v in EXPECTED.items()}
        assert empty["features"]["driver_trips__trips_1h"]["status"] == "PRESENT"
        assert empty["features"]["driver_trips__trips_1h"]["value"] == 0
        assert empty["features"]["driver_trips__tier_last_1d"]["status"] == "NULL_VALUE"


def test_served_statuses_are_counted_like_any_feature(client, server):
    """granero_serving_feature_values counts an aggregate's PRESENT and NULL_VALUE (never
    NOT_FOUND for an entity without events), in both layouts."""
    metric = server.servicer.metrics.feature_values

    def counts() -> dict[str, float]:
        return {s: metric.labels(s)._value.get() for s in ("PRESENT", "NULL_VALUE", "NOT_FOUND")}

    for ask in (lambda: client.get_online_features(DRIVERS, REFS),
                lambda: client.get_online_features(DRIVERS * 6, REFS)):  # 18 rows: column-wise
        before = counts()
        result = ask()
        after = counts()
        flat = [status for row in result.rows for status in (v.status for v in row)]
        assert {s: after[s] - before[s] for s in after} == {
            "PRESENT": flat.count(P), "NULL_VALUE": flat.count(N), "NOT_FOUND": 0}
