"""The gRPC fuzz with access control on: the serving fuzz's requests (tests/serving/test_fuzz.py)
and random credentials against a server that authenticates by token and enforces permissions.

The oracle: no call ever gets UNKNOWN or INTERNAL (an exception escaping the interceptor would be
UNKNOWN) nor bumps the unexpected-error counter; a caller without verifiable credentials only
ever gets UNAUTHENTICATED; an authenticated one gets OK, INVALID_ARGUMENT, NOT_FOUND or
PERMISSION_DENIED, and PERMISSION_DENIED only for a selection some part of which it may not read.
"""

from __future__ import annotations

import string
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from granero.access.config import AccessConfig
from granero.access.tokens import TokensConfig, new_token
from granero.feature_store import FeatureStore
from granero.serving.config import ServingConfig
from granero.serving.server import ServerHandle, build_server
from granero.serving.servicer import SERVICE_NAME
from tests.access.conftest import write_tokens
from tests.conftest import scaled
from tests.serving.conftest import write_all_rows, write_repo
from tests.serving.test_fuzz import METHODS, OTHER_REQUESTS, fuzz, lookup_requests, tagged

pytestmark = pytest.mark.redis
TIMEOUT = scaled(10)
BROKEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
PERMISSIONS = '''
from granero import Permission
ranking = Permission(roles=["ranking"], actions=["read_online"], feature_services=["ranker"],
                     feature_views=["driver_stats"])
'''
READABLE_VIEWS = {"driver_stats"}


@pytest.fixture(scope="module")
def token() -> str:
    return new_token()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str, token: str) -> Iterator[ServerHandle]:
    root = tmp_path_factory.mktemp("fuzz_auth")
    repo = write_repo(root / "repo", redis_url.rsplit("/", 1)[0] + "/10", project="fuzz_auth")
    (repo / "permissions.py").write_text(PERMISSIONS)
    write_tokens(root / "tokens.yaml", {"ranker-app": token})
    access = AccessConfig(authentication=[TokensConfig(file=str(root / "tokens.yaml"))],
                          audit_log=str(root / "audit.jsonl"))
    with FeatureStore(repo) as store:
        store.apply()
        write_all_rows(store)
        with build_server(store, ServingConfig(port=0, max_batch_size=50), access=access) as handle:
            yield handle


@pytest.fixture(scope="module")
def channel(server: ServerHandle) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


def unexpected_errors(server: ServerHandle) -> float:
    return sum(sample.value for metric in server.servicer.metrics.unexpected_errors.collect()
               for sample in metric.samples if sample.name.endswith("_total"))


def status(channel: grpc.Channel, method: str, request, metadata) -> tuple[grpc.StatusCode, str]:
    call = channel.unary_unary(f"/{SERVICE_NAME}/{method}")
    body = request if isinstance(request, bytes) else request.SerializeToString()
    try:
        call(body, timeout=TIMEOUT, metadata=metadata)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def readable(request) -> bool:
    """Whether every view the request names is one the token's permission grants."""
    which = request.WhichOneof("selection")
    if which == "feature_service":
        return request.feature_service == "ranker"
    refs = request.features.refs if which == "features" else []
    return all(ref.partition(":")[0] in READABLE_VIEWS for ref in refs)


@fuzz(400)
@given(request=lookup_requests())
def test_an_authenticated_lookup_is_never_internal(channel, server, token, request):
    before = unexpected_errors(server)
    code, details = status(channel, "GetOnlineFeatures", request, (("authorization", f"Bearer {token}"),))
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.PERMISSION_DENIED), (code, details)
    if readable(request) and code is grpc.StatusCode.PERMISSION_DENIED:
        assert request.WhichOneof("selection") == "features", details  # an unknown feature
    if not readable(request):
        assert code is not grpc.StatusCode.OK, details
    assert unexpected_errors(server) == before


@fuzz(200)
@given(call=OTHER_REQUESTS)
def test_the_other_methods_are_never_internal(channel, server, token, call):
    method, request = call
    code, details = status(channel, method, request, (("authorization", f"Bearer {token}"),))
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), (
        code, details)


CREDENTIALS = st.one_of(
    st.none(), st.text(string.printable.strip(), max_size=40),
    st.builds(lambda scheme, value: f"{scheme} {value}", st.sampled_from(["Bearer", "bearer", "Basic", ""]),
              st.one_of(st.text(string.ascii_letters + string.digits + "._-", max_size=80),
                        st.just("grn_"), st.just("a.b.c"), st.just("eyJhbGciOiJub25lIn0.e30."))),
)


@fuzz(300)
@given(method=st.sampled_from(METHODS), authorization=CREDENTIALS, body=st.one_of(
    st.binary(max_size=48), st.binary(max_size=8).map(lambda b: tagged(2, b))))
def test_unverifiable_credentials_only_ever_get_unauthenticated(channel, server, method, authorization, body):
    metadata = None if authorization is None else (("authorization", authorization),)
    code, details = status(channel, method, body, metadata)
    assert code is grpc.StatusCode.UNAUTHENTICATED, (code, details)


@fuzz(200)
@given(method=st.sampled_from(METHODS), body=st.binary(max_size=64))
def test_random_bytes_with_a_token_are_never_internal(channel, server, token, method, body):
    before = unexpected_errors(server)
    code, details = status(channel, method, body, (("authorization", f"Bearer {token}"),))
    assert code not in BROKEN, (code, details)
    assert unexpected_errors(server) == before

