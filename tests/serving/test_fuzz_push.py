"""Property-based fuzzing of PushFeatures on a real server (loopback, real Redis), in the manner
of test_fuzz: requests from strategies covering every field of PushFeaturesRequest (views known,
unknown, on-demand-free and over the name limit; columns of every Value kind, packed or per row,
with null positions in and past range; batch ids; targets known and not). The oracle: no request
gets UNKNOWN or INTERNAL (nor bumps the unexpected-error counter); any answer is OK,
INVALID_ARGUMENT or NOT_FOUND; a request built only from valid parts is answered OK for every row,
and the rows are then served. The server has a project of its own: pushes change no other test's
data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from granero.feature_store import FeatureStore
from granero.online.encoding import to_micros
from granero.serving.config import ServingConfig
from granero.serving.limits import ServingLimits
from granero.serving.server import ServerHandle, build_server
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from granero.serving.v1.value_pb2 import Value
from tests.serving.conftest import write_repo
from tests.serving.test_fuzz import (
    INT32,
    LONG_NAMES,
    TEXT,
    VALUES,
    VIEWS,
    fuzz,
    put,
    request_columns,
    status_of,
    unexpected_errors,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PUSH_ROWS = 20
COLUMN_NAMES = st.one_of(
    st.sampled_from(["driver_id", "zone", "vehicle", "event_timestamp", "created_timestamp",
                     "conv_rate", "trips", "eta", "fare", "tier"]), TEXT, LONG_NAMES)
NOW = to_micros(datetime.now(UTC))


@pytest.fixture(scope="module")
def push_server(tmp_path_factory, serving_url) -> Iterator[ServerHandle]:
    repo = write_repo(tmp_path_factory.mktemp("fuzz_push") / "repo", serving_url, "fuzz_push")
    with FeatureStore(repo) as store:
        store.apply()
        limits = ServingLimits(max_push_rows=PUSH_ROWS)
        with build_server(store, ServingConfig(port=0, metrics_port=0, limits=limits)) as handle:
            yield handle


@pytest.fixture(scope="module")
def push_stub(push_server) -> Iterator[Any]:
    with grpc.insecure_channel(push_server.address) as channel:
        yield FeatureServingStub(channel)


@st.composite
def push_requests(draw: Any) -> pb.PushFeaturesRequest:
    """Any PushFeaturesRequest: every field, valid and invalid parts mixed."""
    request = pb.PushFeaturesRequest(
        feature_view=draw(st.one_of(st.sampled_from([*VIEWS, "nope"]), TEXT, LONG_NAMES)),
        batch_id=draw(st.one_of(st.just(""), TEXT, LONG_NAMES)),
        to=draw(st.one_of(st.sampled_from([pb.ONLINE_AND_OFFLINE, pb.ONLINE, pb.OFFLINE]), INT32)))
    columns = st.one_of(request_columns(), st.builds(lambda v: pb.RequestColumn(values=v), VALUES))
    put(request.columns, draw(st.dictionaries(COLUMN_NAMES, columns, max_size=6)))
    return request


@st.composite
def valid_push_requests(draw: Any) -> tuple[pb.PushFeaturesRequest, list[int]]:
    """A driver_stats push every server must accept, and its drivers."""
    drivers = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=PUSH_ROWS, unique=True))
    count = len(drivers)
    rates = draw(st.lists(st.floats(allow_nan=False), min_size=count, max_size=count))
    trips = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=count, max_size=count))
    nulls = draw(st.lists(st.integers(0, count - 1), max_size=2, unique=True))
    request = pb.PushFeaturesRequest(feature_view="driver_stats", to=pb.ONLINE_AND_OFFLINE,
                                     batch_id=draw(st.one_of(st.just(""), TEXT)))
    put(request.columns, {name: pb.RequestColumn(values=value) for name, value in {
        "driver_id": Value(int64_list_val={"val": drivers}),
        "event_timestamp": Value(timestamp_list_val={"val": [NOW - 1000] * count}),
        "conv_rate": Value(double_list_val={"val": rates, "null_positions": nulls}),
        "trips": Value(int64_list_val={"val": trips}),
    }.items()})
    return request, drivers


@fuzz(600)
@given(request=push_requests())
def test_any_push_request_is_answered_without_unknown_or_internal(push_stub, push_server, request):
    before = unexpected_errors(push_server)
    code, answer = status_of(push_stub.PushFeatures, request)
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND), (code, answer)
    if request.to not in (pb.ONLINE_AND_OFFLINE, pb.ONLINE, pb.OFFLINE):
        assert code is not grpc.StatusCode.OK, answer
    assert unexpected_errors(push_server) == before


@fuzz(100)
@given(valid=valid_push_requests())
def test_a_push_of_valid_parts_is_accepted_and_served(push_stub, push_server, valid):
    request, drivers = valid
    before = unexpected_errors(push_server)
    code, answer = status_of(push_stub.PushFeatures, request)
    assert code is grpc.StatusCode.OK, answer
    assert answer.rows == len(drivers)
    lookup = pb.GetOnlineFeaturesRequest(features=pb.FeatureList(refs=["driver_stats:trips"]),
                                         layout=pb.COLUMNS)
    put(lookup.entity_columns, {"driver_id": Value(int64_list_val={"val": drivers})})
    code, served = status_of(push_stub.GetOnlineFeatures, lookup)
    assert code is grpc.StatusCode.OK, served
    assert list(served.columns[0].values.int64_list_val.val) == list(request.columns["trips"].values.int64_list_val.val)
    assert unexpected_errors(push_server) == before
