"""Property-based fuzzing of every FeatureServing method on a real server (loopback, real Redis).

Requests are built from strategies that cover every field of serving.proto: every Value kind
(nested lists with null positions in and past range, timestamps and ints over their whole
range, NaN, empty oneofs), entity rows and key columns, both layouts and unknown ones,
references and services with valid and invalid names (some over the name limit). The oracle:
no request ever gets UNKNOWN or INTERNAL (nor bumps the server's unexpected-error counter);
GetOnlineFeatures answers OK or INVALID_ARGUMENT, and INVALID_ARGUMENT whenever the request
holds something malformed; a request built only from valid parts is answered OK with one answer
per entity row. Random bytes as a request body never get INTERNAL either.

Examples are derandomized (CI runs the same ~2,300 every time); GRANERO_FUZZ_SCALE multiplies
them for a longer local run.
"""

from __future__ import annotations

import os
import string
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granero.online.encoding import to_micros
from granero.serving.limits import ServingLimits
from granero.serving.servicer import SERVICE_NAME
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Value
from tests.conftest import scaled
from tests.serving.conftest import DTYPES, MAX_BATCH, feature_name

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SCALE = float(os.environ.get("GRANERO_FUZZ_SCALE", "1"))
TIMEOUT = scaled(10)
NAME_LIMIT = ServingLimits().max_name_length


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=int(examples * SCALE), deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- values ---------------------------------------------------------------------------------------

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
MOMENTS = (to_micros(datetime.min.replace(tzinfo=UTC)), to_micros(datetime.max.replace(tzinfo=UTC)))
TIMESTAMPS = st.one_of(
    INT64, st.integers(MOMENTS[0] - 3, MOMENTS[0] + 3), st.integers(MOMENTS[1] - 3, MOMENTS[1] + 3),
    st.integers(-(10**12), 10**12),
)
ELEMENTS = {
    "int32": INT32, "int64": INT64, "float": st.floats(width=32), "double": st.floats(),
    "bool": st.booleans(), "string": st.text(max_size=12), "bytes": st.binary(max_size=12),
    "timestamp": TIMESTAMPS,
}


def scalar_values() -> st.SearchStrategy[Value]:
    return st.one_of(*(elements.map(lambda v, k=kind: Value(**{f"{k}_val": v}))
                       for kind, elements in ELEMENTS.items()))


def list_values() -> st.SearchStrategy[Value]:
    def of(kind: str, elements: st.SearchStrategy) -> st.SearchStrategy[Value]:
        nulls = st.lists(st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1)), max_size=3)
        return st.builds(lambda val, null_positions: Value(**{f"{kind}_list_val": {
            "val": val, "null_positions": null_positions}}), st.lists(elements, max_size=4), nulls)

    return st.one_of(*(of(kind, elements) for kind, elements in ELEMENTS.items()))


VALUES = st.one_of(st.just(Value()), scalar_values(), list_values())


def malformed(value: Value) -> bool:
    """Whether no Python value stands for ``value`` (the server must say INVALID_ARGUMENT)."""
    kind = value.WhichOneof("kind")
    if kind == "timestamp_val":
        return not MOMENTS[0] <= value.timestamp_val <= MOMENTS[1]
    if kind is None or not kind.endswith("_list_val"):
        return False
    items = getattr(value, kind)
    stamps = items.val if kind == "timestamp_list_val" else []
    return (any(p >= len(items.val) for p in items.null_positions)
            or any(not MOMENTS[0] <= v <= MOMENTS[1] for v in stamps))


# -- names ----------------------------------------------------------------------------------------

VIEWS = {"all_types": [feature_name(d) for d in DTYPES], "driver_stats": ["conv_rate", "trips"],
         "route_stats": ["conv_rate", "eta"],
         "driver_trips": ["trips_1h", "fare_mean_1h", "fare_max_1d", "tier_last_1d"]}
VALID_REFS = [f"{view}:{f}" for view, features in VIEWS.items() for f in [*features, "*"]]
JOIN_KEYS = ["driver_id", "zone", "vehicle"]
TEXT = st.text(max_size=16)
LONG_NAMES = st.integers(NAME_LIMIT - 2, NAME_LIMIT + 40).map(lambda n: "v" * n)
REFS = st.one_of(
    st.sampled_from(VALID_REFS), TEXT,
    st.builds("{}:{}".format, st.sampled_from([*VIEWS, "nope", ""]), TEXT),
    LONG_NAMES, LONG_NAMES.map(lambda name: f"all_types:{name}"),
)
SERVICES = st.one_of(st.just("ranker"), TEXT, LONG_NAMES)
KEY_NAMES = st.one_of(st.sampled_from(JOIN_KEYS), TEXT)


# -- requests -------------------------------------------------------------------------------------


def put(field: Any, values: dict[str, Value]) -> None:
    """``field.update(values)`` for a map of messages (which protobuf does not allow)."""
    for key, value in values.items():
        field[key].CopyFrom(value)


@st.composite
def lookup_requests(draw: Any) -> pb.GetOnlineFeaturesRequest:
    """Any GetOnlineFeaturesRequest: every field, valid and invalid parts mixed."""
    request = pb.GetOnlineFeaturesRequest()
    selection = draw(st.sampled_from(["features", "feature_service", "none"]))
    if selection == "features":
        request.features.refs.extend(draw(st.lists(REFS, max_size=5)))
    elif selection == "feature_service":
        request.feature_service = draw(SERVICES)
    for row in draw(st.lists(st.dictionaries(KEY_NAMES, VALUES, max_size=4), max_size=4)):
        request.entities.append(pb.EntityRow(keys=row))
    if draw(st.booleans()):
        put(request.entity_columns, draw(st.dictionaries(
            KEY_NAMES, st.one_of(list_values(), VALUES), max_size=4)))
    if draw(st.booleans()):
        request.full_feature_names = draw(st.booleans())
    request.layout = draw(st.one_of(st.sampled_from([pb.ROWS, pb.COLUMNS]), INT32))
    return request


def must_be_refused(request: pb.GetOnlineFeaturesRequest) -> bool:
    """What the request holds that no server may accept, whatever else it holds."""
    refs = list(request.features.refs)
    return (
        request.WhichOneof("selection") is None
        or (request.HasField("features") and not refs)
        or bool(request.entities and request.entity_columns)
        or request.layout not in (pb.ROWS, pb.COLUMNS)
        or any(len(name) > NAME_LIMIT for name in [*refs, request.feature_service])
        or any(malformed(v) for row in request.entities for v in row.keys.values())
        or any(malformed(v) or not (v.WhichOneof("kind") or "").endswith("_list_val")
               for v in request.entity_columns.values())
    )


@st.composite
def valid_lookup_requests(draw: Any) -> tuple[pb.GetOnlineFeaturesRequest, int]:
    """A request every server must answer OK, and its number of entity rows."""
    request = pb.GetOnlineFeaturesRequest(layout=draw(st.sampled_from([pb.ROWS, pb.COLUMNS])))
    if draw(st.booleans()):
        request.features.refs.extend(draw(st.lists(st.sampled_from(VALID_REFS), min_size=1,
                                                   max_size=4, unique=True)))
    else:
        request.feature_service = "ranker"
    drivers = st.one_of(st.integers(0, 5), INT64)
    rows = draw(st.lists(st.tuples(drivers, st.one_of(st.integers(0, 3), INT32), TEXT),
                         max_size=MAX_BATCH))
    if draw(st.booleans()):
        driver_kind = draw(st.sampled_from(["int64_val", "int32_val"]))
        for driver, zone, vehicle in rows:
            driver = driver if driver_kind == "int64_val" else max(min(driver, 2**31 - 1), 0)
            request.entities.append(pb.EntityRow(keys={
                "driver_id": Value(**{driver_kind: driver}), "zone": Value(int32_val=zone),
                "vehicle": Value(string_val=vehicle)}))
    elif rows:
        drivers, zones, vehicles = (list(column) for column in zip(*rows, strict=True))
        put(request.entity_columns, {
            "driver_id": Value(int64_list_val={"val": drivers}),
            "zone": Value(int64_list_val={"val": zones}),
            "vehicle": Value(string_list_val={"val": vehicles})})
    return request, len(rows)


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub(server) -> Any:
    with grpc.insecure_channel(server.address) as channel:
        yield FeatureServingStub(channel)


def status_of(call: Any, request: Any) -> tuple[grpc.StatusCode, Any]:
    try:
        return grpc.StatusCode.OK, call(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code(), error.details()


def unexpected_errors(server) -> float:
    return sum(sample.value for metric in server.servicer.metrics.unexpected_errors.collect()
               for sample in metric.samples if sample.name.endswith("_total"))


@fuzz(1500)
@given(request=lookup_requests())
def test_any_lookup_request_is_answered_ok_or_invalid_argument(stub, server, request):
    before = unexpected_errors(server)
    code, answer = status_of(stub.GetOnlineFeatures, request)
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (code, answer)
    if must_be_refused(request):
        assert code is grpc.StatusCode.INVALID_ARGUMENT, answer
    assert unexpected_errors(server) == before


@fuzz(300)
@given(valid=valid_lookup_requests())
def test_a_request_of_valid_parts_is_answered_for_every_entity_row(stub, server, valid):
    request, count = valid
    before = unexpected_errors(server)
    code, answer = status_of(stub.GetOnlineFeatures, request)
    assert code is grpc.StatusCode.OK, answer
    if request.layout == pb.ROWS:
        assert len(answer.rows) == count
    else:
        assert {len(view.statuses) for view in answer.views} <= {count}
    assert unexpected_errors(server) == before


OTHER_REQUESTS = st.one_of(
    st.builds(lambda name: ("DescribeFeatureView", pb.DescribeFeatureViewRequest(name=name)),
              st.one_of(st.sampled_from(list(VIEWS)), TEXT, LONG_NAMES)),
    st.just(("ListFeatureServices", pb.ListFeatureServicesRequest())),
    st.just(("GetServerInfo", pb.GetServerInfoRequest())),
)


@fuzz(200)
@given(call=OTHER_REQUESTS)
def test_the_other_methods_answer_ok_not_found_or_invalid_argument(stub, server, call):
    method, request = call
    before = unexpected_errors(server)
    code, answer = status_of(getattr(stub, method), request)
    if method != "DescribeFeatureView" or request.name in VIEWS:
        assert code is grpc.StatusCode.OK, answer
    elif len(request.name) > NAME_LIMIT:
        assert code is grpc.StatusCode.INVALID_ARGUMENT, answer
    else:
        assert code is grpc.StatusCode.NOT_FOUND, answer
    assert unexpected_errors(server) == before


METHODS = list(pb.DESCRIPTOR.services_by_name["FeatureServing"].methods_by_name)


def tagged(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (field numbers below 16)."""
    return bytes([field << 3 | 2, len(payload)]) + payload


BAD_UTF8 = b"\xff\xfe"
MALFORMED_BODIES = {
    "feature_service": tagged(2, BAD_UTF8),
    "a reference": tagged(1, tagged(1, b"driver_stats:" + BAD_UTF8)),
    "an entity key name": tagged(3, tagged(1, tagged(1, BAD_UTF8))),
    "a string_val": tagged(3, tagged(1, tagged(1, b"vehicle") + tagged(2, tagged(6, BAD_UTF8)))),
    "a truncated field": b"\x12\x05ab",
}


def raw_call(channel: grpc.Channel, method: str, body: bytes) -> grpc.StatusCode:
    call = channel.unary_unary(f"/{SERVICE_NAME}/{method}")
    try:
        call(body, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def raw_channel(server) -> Any:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


@pytest.mark.parametrize("body", list(MALFORMED_BODIES.values()), ids=list(MALFORMED_BODIES))
def test_a_body_that_does_not_parse_is_invalid_argument(raw_channel, body):
    assert raw_call(raw_channel, "GetOnlineFeatures", body) is grpc.StatusCode.INVALID_ARGUMENT


@fuzz(300)
@given(method=st.sampled_from(METHODS), body=st.one_of(
    st.binary(max_size=64), st.binary(max_size=8).map(lambda b: tagged(2, b)),
    st.text(string.printable, max_size=32).map(str.encode)))
def test_random_bytes_never_get_internal(raw_channel, server, method, body):
    before = unexpected_errors(server)
    code = raw_call(raw_channel, method, body)
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND), code
    assert unexpected_errors(server) == before


# -- request-context values (on-demand features) ---------------------------------------------------

OD_VIEWS = {"trip_features": ["fare_per_trip", "score", "eta_minutes", "stop_count", "since_day"],
            "trip_label": ["label"], "echo": ["double_fare"], "fragile": ["checked"],
            "driver_stats": ["conv_rate", "trips", "since"]}
OD_REFS = st.one_of(st.sampled_from([f"{v}:{f}" for v, fs in OD_VIEWS.items() for f in [*fs, "*"]]),
                    st.builds("{}:{}".format, st.sampled_from([*OD_VIEWS, "nope"]), TEXT))
FIELD_NAMES = st.one_of(st.sampled_from(["fare", "tag", "stops"]), TEXT)
OD_SERVICES = st.sampled_from(["trip_service", "fragile_service", "echo_service", "nope"])


def request_columns() -> st.SearchStrategy[pb.RequestColumn]:
    return st.one_of(
        st.builds(lambda v: pb.RequestColumn(values=v), VALUES),
        st.builds(lambda vs: pb.RequestColumn(list_values=vs), st.lists(VALUES, max_size=4)),
        st.builds(lambda v, vs: pb.RequestColumn(values=v, list_values=vs), list_values(),
                  st.lists(VALUES, min_size=1, max_size=2)),
    )


@st.composite
def on_demand_requests(draw: Any) -> pb.GetOnlineFeaturesRequest:
    """Any request against the on-demand repo: request values per row and column-wise, typed
    right and wrong, beside keys of every shape."""
    request = pb.GetOnlineFeaturesRequest(layout=draw(st.sampled_from([pb.ROWS, pb.COLUMNS])))
    if draw(st.booleans()):
        request.features.refs.extend(draw(st.lists(OD_REFS, min_size=1, max_size=4)))
    else:
        request.feature_service = draw(OD_SERVICES)
    keys = st.dictionaries(st.sampled_from(JOIN_KEYS), VALUES, max_size=3)
    for row_keys, values in draw(st.lists(st.tuples(keys, st.dictionaries(
            FIELD_NAMES, VALUES, max_size=3)), max_size=4)):
        request.entities.append(pb.EntityRow(keys=row_keys, request_values=values))
    if not request.entities or draw(st.booleans()):
        put(request.entity_columns, draw(st.dictionaries(st.sampled_from(JOIN_KEYS),
                                                         list_values(), max_size=3)))
        put(request.request_columns, draw(st.dictionaries(FIELD_NAMES, request_columns(),
                                                          max_size=3)))
    return request


def on_demand_selected(request: pb.GetOnlineFeaturesRequest) -> set[str]:
    views = {ref.partition(":")[0] for ref in request.features.refs}
    services = {"trip_service": {"trip_features"}, "fragile_service": {"fragile"},
                "echo_service": {"echo"}}
    return (views | services.get(request.feature_service, set())) - {"driver_stats", "nope"}


@pytest.fixture(scope="module")
def od_server(tmp_path_factory, redis_url) -> Any:
    from granero.serving.config import ServingConfig
    from granero.serving.server import build_server
    from tests.serving.on_demand_repo import applied_store

    url = redis_url.rsplit("/", 1)[0] + "/10"
    with applied_store(tmp_path_factory.mktemp("fuzz_on_demand") / "repo", url) as store, \
            build_server(store, ServingConfig(port=0, max_batch_size=MAX_BATCH)) as handle:
        yield handle


@pytest.fixture(scope="module")
def od_stub(od_server) -> Any:
    with grpc.insecure_channel(od_server.address) as channel:
        yield FeatureServingStub(channel)


@fuzz(600)
@given(request=on_demand_requests())
def test_any_request_context_is_answered_without_unknown_or_internal(od_stub, od_server, request):
    """OK or INVALID_ARGUMENT; FAILED_PRECONDITION only from a transform that fails (``fragile``
    on its chosen fares); INVALID_ARGUMENT for malformed request values of on-demand requests."""
    before = unexpected_errors(od_server)
    code, answer = status_of(od_stub.GetOnlineFeatures, request)
    allowed = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    if "fragile" in on_demand_selected(request):
        allowed.add(grpc.StatusCode.FAILED_PRECONDITION)
    assert code in allowed, (code, answer)
    given_values = [v for row in request.entities for v in row.request_values.values()]
    given_values += [c.values for c in request.request_columns.values()]
    given_values += [v for c in request.request_columns.values() for v in c.list_values]
    if on_demand_selected(request) and any(malformed(v) for v in given_values):
        assert code is grpc.StatusCode.INVALID_ARGUMENT, answer
    assert unexpected_errors(od_server) == before


FARES = st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-(2**53), 2**53).map(float))


@fuzz(150)
@given(data=st.data(), layout=st.sampled_from([pb.ROWS, pb.COLUMNS]), as_rows=st.booleans())
def test_valid_request_values_are_answered_for_every_entity_row(od_stub, od_server, data, layout,
                                                                as_rows):
    fares = data.draw(st.lists(FARES.filter(lambda f: f not in (13.0, 99.0, 7.0)),
                               max_size=MAX_BATCH))
    tags = data.draw(st.lists(st.one_of(st.none(), TEXT), min_size=len(fares),
                              max_size=len(fares)))
    drivers = data.draw(st.lists(st.one_of(st.integers(0, 5), INT64), min_size=len(fares),
                                 max_size=len(fares)))
    request = pb.GetOnlineFeaturesRequest(layout=layout)
    request.features.refs.extend(["trip_label:label", "echo:double_fare", "fragile:checked"])
    if as_rows:
        for fare, tag, driver in zip(fares, tags, drivers, strict=True):
            request.entities.add(keys={"driver_id": Value(int64_val=driver)}, request_values={
                "fare": Value() if fare is None else Value(double_val=fare),
                "tag": Value() if tag is None else Value(string_val=tag), "stops": Value()})
    else:
        put(request.entity_columns, {"driver_id": Value(int64_list_val={"val": drivers})})
        columns = {"fare": fares, "tag": tags, "stops": [None] * len(fares)}
        from granero.serving.request_context import encode_request_columns

        put(request.request_columns, encode_request_columns(columns))
    before = unexpected_errors(od_server)
    code, answer = status_of(od_stub.GetOnlineFeatures, request)
    assert code is grpc.StatusCode.OK, answer
    if layout == pb.ROWS:
        assert len(answer.rows) == len(fares)
    else:
        assert {len(view.statuses) for view in answer.views} <= {len(fares)}
    assert unexpected_errors(od_server) == before
