"""On-demand features served: in process, over gRPC (both layouts, entity rows and key columns)
and through the Client, against an oracle written from the rows stored and the documented rules
(statuses from the inputs, values withheld unless every input view is PRESENT, the oldest input's
event time); errors per request, never UNKNOWN or INTERNAL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero.errors import InvalidRequest, TransformError
from granero.online.encoding import to_micros
from granero.online.lookup import OnlineResult, Status
from granero.serving.client import Client
from granero.serving.columnar import decode_columns_response
from granero.serving.config import ServingConfig
from granero.serving.convert import decode_result, encode_key
from granero.serving.request_context import encode_request_columns, encode_request_value
from granero.serving.server import build_server
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Value
from tests.conftest import scaled
from tests.serving.on_demand_repo import ROWS, applied_store

pytestmark = pytest.mark.redis

P, N, OLD, NV = Status.PRESENT, Status.NOT_FOUND, Status.OUTSIDE_MAX_AGE, Status.NULL_VALUE
TRIP = ["trip_features:*", "driver_stats:conv_rate", "trip_label:label", "echo:double_fare"]
TIMEOUT = scaled(10)


@pytest.fixture(scope="module")
def od_store(tmp_path_factory, redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/8"
    with applied_store(tmp_path_factory.mktemp("on_demand") / "repo", url) as store:
        yield store


@pytest.fixture(scope="module")
def od_server(od_store):
    config = ServingConfig(port=0, metrics_port=0, max_workers=4)
    with build_server(od_store, config) as handle:
        yield handle


@pytest.fixture(scope="module")
def stub(od_server):
    with grpc.insecure_channel(od_server.address) as channel:
        yield FeatureServingStub(channel)


# -- the oracle -----------------------------------------------------------------------------------

DRIVERS = {row["driver_id"]: row for row in ROWS["driver_stats"]}
ROUTE = ROWS["route_stats"][0]


def driver_status(driver_id: int) -> Status:
    if driver_id not in DRIVERS:
        return N
    return OLD if driver_id == 3 else P


def route_status(zone: int, vehicle: str) -> Status:
    return P if (zone, vehicle) == (ROUTE["zone"], ROUTE["vehicle"]) else N


def combined(*statuses: Status) -> Status:
    return N if N in statuses else OLD if OLD in statuses else P


def expected(entity: dict, request: dict) -> dict[str, tuple[Any, Status, datetime | None]]:
    """Per output column: (value, status, event time) the documented rules give."""
    driver = DRIVERS.get(entity["driver_id"], {})
    d_status, r_status = driver_status(entity["driver_id"]), route_status(entity["zone"],
                                                                         entity["vehicle"])
    fare, tag, stops = request["fare"], request["tag"], request["stops"]
    trips = driver.get("trips") if d_status is P else None
    conv = driver.get("conv_rate") if d_status is P else None
    since = driver.get("since") if d_status is P else None
    status = combined(d_status, r_status)
    times = [driver.get("event_timestamp") if d_status is not N else None,
             ROUTE["event_timestamp"] if r_status is not N else None]
    oldest = None if status is N else min(t for t in times if t)
    day = since.replace(hour=0, minute=0, second=0, microsecond=0) if since else None
    trip_values = {
        "trip_features__fare_per_trip": None if None in (fare, trips) else fare / (trips + 1),
        "trip_features__score": None if None in (fare, conv) else conv * fare,
        "trip_features__eta_minutes": ROUTE["eta"] * 60.0,
        "trip_features__stop_count": None if stops is None else len(stops),
        "trip_features__since_day": day,
    }
    out = {name: withheld(value, status, oldest) for name, value in trip_values.items()}
    out["driver_stats__conv_rate"] = withheld(driver.get("conv_rate"), d_status,
                                              driver.get("event_timestamp"))
    label = None if tag is None else f"{tag}-{trips}"
    d_time = driver.get("event_timestamp") if d_status is not N else None
    out["trip_label__label"] = withheld(label, d_status, d_time)
    out["echo__double_fare"] = withheld(None if fare is None else fare * 2, P, None)
    return out


def withheld(value: Any, status: Status, time: datetime | None) -> tuple[Any, Status, Any]:
    if status is not P:
        return None, status, time
    return value, NV if value is None else P, time


def assert_matches(result: OnlineResult, entities: list[dict], requests: list[dict]) -> None:
    for row, entity, request in zip(result.rows, entities, requests, strict=True):
        want = expected(entity, request)
        got = {name: (v.value, v.status, v.event_timestamp)
               for name, v in zip(result.feature_names, row, strict=True)}
        assert set(got) == set(want)
        for name, (value, status, time) in want.items():
            assert got[name][1:] == (status, time), (name, entity, request, got[name])
            assert same(got[name][0], value), (name, entity, request, got[name])


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b and type(a) is type(b)


# -- requests on each path ------------------------------------------------------------------------

def in_process(store, entities, requests, refs=TRIP):
    return store.get_online_features(entities, refs, request_data=requests)


def grpc_rows(stub, entities, requests, refs=TRIP, layout=pb.ROWS):
    """Entity rows, each carrying its request values."""
    request = pb.GetOnlineFeaturesRequest(layout=layout)
    request.features.refs.extend(refs)
    for entity, values in zip(entities, requests, strict=True):
        row = request.entities.add()
        for key, value in entity.items():
            row.keys[key].CopyFrom(encode_key(value))
        for name, value in values.items():
            row.request_values[name].CopyFrom(encode_request_value(value))
    return decode(stub.GetOnlineFeatures(request, timeout=TIMEOUT), layout)


def grpc_columns(stub, entities, requests, refs=TRIP, layout=pb.COLUMNS):
    """Key columns and request columns."""
    request = pb.GetOnlineFeaturesRequest(layout=layout)
    request.features.refs.extend(refs)
    keys = {"driver_id": ("int64_list_val", []), "zone": ("int64_list_val", []),
            "vehicle": ("string_list_val", [])}
    for entity in entities:
        for key, (_, values) in keys.items():
            values.append(entity[key])
    for key, (field, values) in keys.items():
        request.entity_columns[key].CopyFrom(Value(**{field: {"val": values}}))
    columns = {name: [r[name] for r in requests] for name in ("fare", "tag", "stops")}
    for name, column in encode_request_columns(columns).items():
        request.request_columns[name].CopyFrom(column)
    return decode(stub.GetOnlineFeatures(request, timeout=TIMEOUT), layout)


def decode(response: pb.GetOnlineFeaturesResponse, layout: int) -> OnlineResult:
    return decode_columns_response(response) if layout == pb.COLUMNS else decode_result(response)


ENTITIES = st.fixed_dictionaries({
    "driver_id": st.integers(1, 5), "zone": st.sampled_from([1, 2]),
    "vehicle": st.sampled_from(["car", "bike"]),
})
REQUESTS = st.fixed_dictionaries({
    "fare": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False).filter(
        lambda f: f not in (13.0, 99.0, 7.0)), st.integers(-1000, 1000).map(float)),
    "tag": st.one_of(st.none(), st.text(max_size=5)),
    "stops": st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(0, 2**31 - 1)),
                                           max_size=3)),
})


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(ENTITIES, REQUESTS), max_size=40),
       path=st.sampled_from(["in_process", "rows", "rows_columns_layout", "columns",
                             "columns_rows_layout", "client"]))
def test_every_path_answers_as_the_oracle(od_store, od_server, stub, batch, path):
    """Batches of 0 to 40 rows cross ROW_BY_ROW_BELOW (16) on every path."""
    entities = [entity for entity, _ in batch]
    requests = [request for _, request in batch]
    if path == "in_process":
        result = in_process(od_store, entities, requests)
    elif path.startswith("rows"):
        layout = pb.COLUMNS if path.endswith("columns_layout") else pb.ROWS
        result = grpc_rows(stub, entities, requests, layout=layout)
    elif path.startswith("columns"):
        layout = pb.ROWS if path.endswith("rows_layout") else pb.COLUMNS
        result = grpc_columns(stub, entities, requests, layout=layout)
    else:
        with Client(od_server.address) as client:
            result = client.get_online_features(entities, TRIP, request_data=requests)
    if not batch and path in ("rows", "columns_rows_layout"):
        assert result.rows == []
        return
    assert_matches(result, entities, requests)


# -- statuses and order -----------------------------------------------------------------------------

FULL = {"fare": 10.0, "tag": "x", "stops": [1, None]}


def test_names_follow_the_request_order_across_plain_and_on_demand_views(od_store):
    refs = ["echo:double_fare", "driver_stats:trips", "trip_features:score", "driver_stats:since"]
    result = in_process(od_store, [{"driver_id": 1, "zone": 1, "vehicle": "car"}], [FULL], refs)
    assert result.feature_names == ["echo__double_fare", "driver_stats__trips",
                                    "driver_stats__since", "trip_features__score"]
    assert [v.value for v in result.rows[0]] == [20.0, 3, ROWS["driver_stats"][0]["since"], 5.0]


def test_an_input_missing_or_too_old_withholds_the_output_with_its_status(od_store):
    entities = [{"driver_id": d, "zone": 1, "vehicle": "car"} for d in (1, 3, 4)]
    result = in_process(od_store, entities, [FULL] * 3, ["trip_features:score"])
    assert [(row[0].value, row[0].status) for row in result.rows] == [(5.0, P), (None, OLD),
                                                                     (None, N)]


def test_not_found_wins_over_outside_max_age_and_the_oldest_input_time_is_kept(od_store):
    entities = [{"driver_id": 3, "zone": 2, "vehicle": "car"},
                {"driver_id": 2, "zone": 1, "vehicle": "car"}]
    result = in_process(od_store, entities, [FULL] * 2, ["trip_features:eta_minutes"])
    assert [row[0].status for row in result.rows] == [N, P]
    assert result.rows[1][0].event_timestamp == ROWS["driver_stats"][1]["event_timestamp"]


def test_a_request_of_request_values_only_needs_no_entity_keys(od_store, od_server):
    requests = [{"fare": 1.5}, {"fare": None}]
    local = in_process(od_store, [{}, {}], requests, ["echo:*"])
    with Client(od_server.address) as client:
        remote = client.get_online_features([{}, {}], ["echo:*"], request_data=requests)
    assert local == remote
    assert [(row[0].value, row[0].status) for row in local.rows] == [(3.0, P), (None, NV)]


def test_a_feature_service_with_on_demand_features_is_served(od_store, stub):
    request = pb.GetOnlineFeaturesRequest(feature_service="trip_service")
    request.entities.add(keys={"driver_id": Value(int64_val=1), "zone": Value(int32_val=1),
                               "vehicle": Value(string_val="car")},
                         request_values={"fare": Value(double_val=8.0),
                                         "tag": Value(string_val="a"), "stops": Value()})
    response = stub.GetOnlineFeatures(request, timeout=TIMEOUT)
    assert list(response.feature_names)[:3] == ["driver_stats__trips",
                                                "trip_features__fare_per_trip",
                                                "trip_features__score"]
    assert decode_result(response).rows[0][1].value == 2.0
    local = od_store.get_online_features([{"driver_id": 1, "zone": 1, "vehicle": "car"}],
                                         feature_service="trip_service",
                                         request_data={"fare": [8.0], "tag": ["a"],
                                                       "stops": [None]})
    assert local == decode_result(response)


# -- errors ---------------------------------------------------------------------------------------


def code_and_message(call, request) -> tuple[grpc.StatusCode, str]:
    try:
        call(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def echo_request(**values: Value) -> pb.GetOnlineFeaturesRequest:
    request = pb.GetOnlineFeaturesRequest()
    request.features.refs.append("echo:double_fare")
    request.entities.add(request_values=values)
    return request


@pytest.mark.parametrize(("values", "words"), [
    ({}, ["missing request value 'fare' (float64)", "'echo'"]),
    ({"fare": Value(string_val="1.5")}, ["entity row 0", "'fare'", "must be float64", "str"]),
    ({"fare": Value(double_list_val={"val": [1.0]})}, ["'fare'", "must be float64", "list"]),
    ({"fare": Value(int64_val=2**53 + 1)}, ["'fare'", "not exactly representable"]),
    ({"fare": Value(timestamp_val=2**62)}, ["request value 'fare'", "outside the range"]),
])
def test_a_missing_or_mistyped_request_value_is_invalid_argument_naming_it(stub, od_store,
                                                                           values, words):
    code, message = code_and_message(stub.GetOnlineFeatures, echo_request(**values))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert all(word in message for word in words), message


def test_the_same_mistake_in_process_names_it_alike(od_store):
    with pytest.raises(InvalidRequest, match="entity row 1: request value 'fare' of on-demand "
                                             "view 'echo' must be float64, got str"):
        od_store.get_online_features([{}, {}], ["echo:*"], request_data={"fare": [1.0, "2"]})


def test_request_columns_beside_entity_rows_are_refused(stub):
    request = echo_request(fare=Value(double_val=1.0))
    request.request_columns["fare"].values.double_list_val.val.append(1.0)
    code, message = code_and_message(stub.GetOnlineFeatures, request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "request_columns" in message


@pytest.mark.parametrize(("fare", "words"), [
    (13.0, ["'fragile'", "raised ValueError", "unlucky fare"]),
    (99.0, ["'fragile'", "output 'checked' (declared float64)"]),
    (7.0, ["'fragile'", "output 'checked'", "2 values for a batch of 1 rows"]),
])
def test_a_failing_transform_is_failed_precondition_naming_the_view(stub, od_store, od_server,
                                                                    fare, words):
    request = pb.GetOnlineFeaturesRequest(feature_service="fragile_service")
    request.entities.add(request_values={"fare": Value(double_val=fare)})
    code, message = code_and_message(stub.GetOnlineFeatures, request)
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert all(word in message for word in words), message
    with pytest.raises(TransformError):
        od_store.get_online_features([{}], ["fragile:checked"], request_data={"fare": [fare]})
    assert unexpected(od_server) == 0


def test_the_fragile_view_answers_other_values(stub):
    request = pb.GetOnlineFeaturesRequest(feature_service="fragile_service")
    request.entities.add(request_values={"fare": Value(double_val=2.0)})
    assert decode_result(stub.GetOnlineFeatures(request, timeout=TIMEOUT)).rows[0][0].value == 2.0


def unexpected(server) -> float:
    return sum(sample.value for metric in server.servicer.metrics.unexpected_errors.collect()
               for sample in metric.samples if sample.name.endswith("_total"))


# -- describing --------------------------------------------------------------------------------------


def test_an_on_demand_view_is_described_with_its_keys_and_request_fields(od_server):
    with Client(od_server.address) as client:
        info = client.describe_feature_view("trip_features")
        services = {s.name: s.features for s in client.list_feature_services()}
    assert info.on_demand and info.join_keys == {"driver_id": "int64", "zone": "int32",
                                                  "vehicle": "string"}
    assert info.request_fields == {"fare": "float64", "tag": "string", "stops": "list<int32>"}
    assert [c.name for c in info.features][:2] == ["fare_per_trip", "score"]
    assert services["fragile_service"] == ["fragile:checked"]


def test_timestamps_at_the_clock_edge_are_read_exactly(od_store):
    """An input timestamp feature reaches the transform as the stored instant (micros)."""
    result = in_process(od_store, [{"driver_id": 1, "zone": 1, "vehicle": "car"}], [FULL],
                        ["trip_features:since_day"])
    since = ROWS["driver_stats"][0]["since"]
    assert result.rows[0][0].value == since.replace(hour=0, minute=0, second=0, microsecond=0)
    assert to_micros(result.rows[0][0].value) % (86_400 * 10**6) == 0
    assert result.rows[0][0].value.tzinfo is not None and \
        result.rows[0][0].value.utcoffset() == timedelta(0) and UTC
