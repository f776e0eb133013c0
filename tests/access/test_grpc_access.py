"""Access control on a real gRPC server (loopback, real Redis): tokens, JWTs, permissions,
PII, the audit log, registry follow and the hidden-name probe."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from granero.errors import PermissionDenied, Unauthenticated
from granero.serving.client import Client
from granero.serving.v1 import serving_pb2 as pb
from granero.serving.v1.serving_pb2_grpc import FeatureServingStub
from tests.access.conftest import Issuer, access_config, audit_lines, serve, write_access_repo, write_tokens
from tests.conftest import scaled

pytestmark = pytest.mark.redis
TIMEOUT = scaled(10)


def call(handle, method: str, request, bearer: str | None = None, scheme: str = "Bearer"):
    """(status code, details, response) of one raw call with ``authorization`` metadata."""
    metadata = (("authorization", f"{scheme} {bearer}"),) if bearer is not None else None
    with grpc.insecure_channel(handle.address) as channel:
        try:
            response = getattr(FeatureServingStub(channel), method)(request, timeout=TIMEOUT,
                                                                    metadata=metadata)
        except grpc.RpcError as error:
            return error.code(), error.details(), None
    return grpc.StatusCode.OK, "", response


def read(feature_service: str | None = None, refs: list[str] | None = None):
    request = pb.GetOnlineFeaturesRequest(layout=pb.ROWS)
    request.entities.add().keys["driver_id"].int64_val = 1
    if refs is not None:
        request.features.refs.extend(refs)
    else:
        request.feature_service = feature_service
    return request


def values(response) -> dict:
    row = response.rows[0]
    return {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            for name, value in zip(response.feature_names, row.values, strict=True)}


# -- who is calling ---------------------------------------------------------------------------------


def test_a_valid_token_is_served(access_server, tokens):
    code, _, response = call(access_server, "GetOnlineFeatures", read("ranker"), tokens["ranker-app"])
    assert code == grpc.StatusCode.OK
    assert values(response) == {"driver_stats__conv_rate": 0.9, "driver_stats__trips": 12}


@pytest.mark.parametrize(("bearer", "scheme"), [
    (None, "Bearer"), ("grn_not-a-token-we-issued", "Bearer"), ("", "Bearer"), ("x y", "Basic"),
    ("a.b.c", "Bearer"), ("x" * 5000, "Bearer"), ("..", "Bearer"),
])
def test_missing_unknown_and_malformed_credentials_are_unauthenticated(access_server, bearer, scheme):
    code, details, _ = call(access_server, "GetOnlineFeatures", read("ranker"), bearer, scheme)
    assert code == grpc.StatusCode.UNAUTHENTICATED, details
    assert "ranker" not in details and "driver" not in details


def test_a_revoked_token_is_refused_at_once_without_restart(access_store, secrets_dir, tokens, tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "jwks.json").write_text((secrets_dir / "jwks.json").read_text())
    write_tokens(folder / "tokens.yaml", tokens)
    with serve(access_store, access_config(folder)) as handle:
        assert call(handle, "GetServerInfo", pb.GetServerInfoRequest(), tokens["ranker-app"])[0] == grpc.StatusCode.OK
        write_tokens(folder / "tokens.yaml", {k: v for k, v in tokens.items() if k != "ranker-app"})
        code, details, _ = call(handle, "GetServerInfo", pb.GetServerInfoRequest(), tokens["ranker-app"])
        assert code == grpc.StatusCode.UNAUTHENTICATED, details
        assert call(handle, "GetServerInfo", pb.GetServerInfoRequest(), tokens["auditor"])[0] == grpc.StatusCode.OK


def test_a_valid_jwt_maps_to_its_subject_and_roles(access_server, issuer):
    code, details, response = call(access_server, "GetOnlineFeatures", read("ranker"), issuer.token())
    assert code == grpc.StatusCode.OK, details
    no_role = issuer.token(roles=[])
    assert call(access_server, "GetOnlineFeatures", read("ranker"), no_role)[0] == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(("make", "reason"), [
    (lambda issuer: Issuer(issuer.kid).token(), "signature does not verify"),
    (lambda issuer: issuer.token(aud="someone-else"), "not addressed to this audience"),
    (lambda issuer: issuer.token(expires_in=-3600), "has expired"),
    (lambda issuer: issuer.token(iss="https://evil.test"), "issuer"),
    (lambda issuer: Issuer("k9").token(), "key id"),
    (lambda issuer: issuer.token(exp=None), "exp"),
    (lambda issuer: _unsigned(issuer.token()), "refused"),
])
def test_bad_jwts_are_unauthenticated_with_the_reason(access_server, issuer, make, reason):
    code, details, _ = call(access_server, "GetOnlineFeatures", read("ranker"), make(issuer))
    assert code == grpc.StatusCode.UNAUTHENTICATED and reason in details, details


def _unsigned(token: str) -> str:
    """The same claims with ``alg: none`` and no signature."""
    import base64

    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    return f"{header.decode()}.{token.split('.')[1]}."


def test_health_needs_no_credentials_but_reflection_does(access_server):
    with grpc.insecure_channel(access_server.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                           timeout=TIMEOUT))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- what they may do -------------------------------------------------------------------------------


def test_a_forbidden_read_is_permission_denied_and_audited(access_server, tokens, secrets_dir):
    before = len(audit_lines(secrets_dir / "audit.jsonl"))
    code, details, _ = call(access_server, "GetOnlineFeatures", read("vault"), tokens["ranker-app"])
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == "ranker-app may not read_online feature service 'vault', or it does not exist"
    call(access_server, "GetOnlineFeatures", read("ranker"), tokens["ranker-app"])
    call(access_server, "GetOnlineFeatures", read("ranker"), "grn_forged")
    denied, allowed, anonymous = audit_lines(secrets_dir / "audit.jsonl")[before:]
    assert {k: denied[k] for k in ("method", "principal", "via", "action", "outcome", "code",
                                   "feature_service", "entities")} == {
        "method": "GetOnlineFeatures", "principal": "ranker-app", "via": "token",
        "action": "read_online", "outcome": "denied", "code": "PERMISSION_DENIED",
        "feature_service": "vault", "entities": 1}
    assert (allowed["outcome"], allowed["code"], allowed["feature_service"]) == ("allowed", "OK", "ranker")
    assert (anonymous["outcome"], anonymous["code"], anonymous["principal"]) == (
        "unauthenticated", "UNAUTHENTICATED", "")
    assert all(line["latency_ms"] >= 0 for line in (denied, allowed, anonymous))
    keys = {"ts", "method", "principal", "via", "action", "outcome", "code", "feature_service",
            "views", "entities", "latency_ms"}
    assert all(set(line) == keys for line in (denied, allowed, anonymous))  # no values, no tokens
    assert "ada@example.org" not in (secrets_dir / "audit.jsonl").read_text()


def test_pii_is_withheld_unless_granted(access_server, tokens):
    code, _, response = call(access_server, "GetOnlineFeatures", read("ranker"), tokens["ranker-app"])
    assert "driver_stats__email" not in response.feature_names
    code, details, _ = call(access_server, "GetOnlineFeatures", read(refs=["driver_stats:email"]),
                            tokens["ranker-app"])
    assert code == grpc.StatusCode.PERMISSION_DENIED and "ada" not in details
    code, _, response = call(access_server, "GetOnlineFeatures", read(refs=["driver_stats:*"]),
                             tokens["auditor"])
    assert values(response)["driver_stats__email"] == "ada@example.org"
    with Client(access_server.address, timeout=TIMEOUT, token=tokens["auditor"]) as client:
        result = client.get_online_features([{"driver_id": 1}], feature_service="ranker")
    assert result.to_dict()["driver_stats__email"] == ["ada@example.org"]


def test_the_hidden_name_probe_learns_nothing(access_server, tokens):
    """Unknown and forbidden names get the same answer, the asked name aside."""
    token = tokens["ranker-app"]

    def answer(method, request, name):
        code, details, _ = call(access_server, method, request, token)
        return code, details.replace(name, "NAME")

    assert answer("GetOnlineFeatures", read("vault"), "vault") == answer(
        "GetOnlineFeatures", read("no_such"), "no_such")
    assert answer("GetOnlineFeatures", read(refs=["vault_stats:score"]), "vault_stats:score") == answer(
        "GetOnlineFeatures", read(refs=["nope:score"]), "nope:score")
    assert answer("GetOnlineFeatures", read(refs=["driver_stats:email"]), "driver_stats:email") == answer(
        "GetOnlineFeatures", read(refs=["driver_stats:nope"]), "driver_stats:nope")
    hidden = answer("DescribeFeatureView", pb.DescribeFeatureViewRequest(name="vault_stats"), "vault_stats")
    assert hidden == answer("DescribeFeatureView", pb.DescribeFeatureViewRequest(name="zz"), "zz")
    assert hidden[0] == grpc.StatusCode.NOT_FOUND and "known" not in hidden[1]
    _, _, listed = call(access_server, "ListFeatureServices", pb.ListFeatureServicesRequest(), token)
    assert [s.name for s in listed.services] == ["ranker"]
    with Client(access_server.address, timeout=TIMEOUT, token=token) as client, \
            pytest.raises(PermissionDenied):
        client.get_online_features([{"driver_id": 1}], feature_service="vault")


def test_the_client_raises_unauthenticated(access_server):
    with Client(access_server.address, timeout=TIMEOUT, token="grn_nope") as client, \
            pytest.raises(Unauthenticated):
        client.server_info()


def test_a_permission_change_applies_without_restart(access_url, secrets_dir, tokens, tmp_path):
    from granero.feature_store import FeatureStore

    repo = write_access_repo(tmp_path / "repo", access_url, "access_follow")
    with FeatureStore(repo) as store:
        store.apply()
        with serve(store, access_config(secrets_dir)) as handle:
            request, token = read("vault"), tokens["nobody"]
            assert call(handle, "GetOnlineFeatures", request, token)[0] == grpc.StatusCode.PERMISSION_DENIED
            with (repo / "permissions.py").open("a") as file:
                file.write('nobodies = Permission(principals=["nobody"], actions=["read_online"], '
                           'feature_services=["vault"])\n')
            store.apply()
            code, details, response = call(handle, "GetOnlineFeatures", request, token)
            assert code == grpc.StatusCode.OK, details
            (repo / "permissions.py").unlink()
            store.apply()  # no permission left: a repo without permissions allows everything
            assert call(handle, "GetOnlineFeatures", read("ranker"), token)[0] == grpc.StatusCode.OK


def test_deny_by_default_refuses_a_repo_without_permissions(access_url, secrets_dir, tokens, tmp_path):
    from granero.feature_store import FeatureStore

    repo = write_access_repo(tmp_path / "repo", access_url, "access_deny")
    (repo / "permissions.py").unlink()
    with FeatureStore(repo) as store:
        store.apply()
        with serve(store, access_config(secrets_dir, deny_by_default=True)) as handle:
            code, _, _ = call(handle, "GetOnlineFeatures", read("ranker"), tokens["ranker-app"])
            assert code == grpc.StatusCode.PERMISSION_DENIED
        with serve(store, access_config(secrets_dir)) as handle:
            assert call(handle, "GetOnlineFeatures", read("ranker"), tokens["ranker-app"])[0] == grpc.StatusCode.OK


def test_refusals_are_counted_by_method_and_code_with_no_name_in_any_label(access_server, tokens):
    def refused(code: str) -> float:
        return sum(sample.value for metric in access_server.servicer.metrics.requests.collect()
                   for sample in metric.samples if sample.name.endswith("_total")
                   and sample.labels.get("code") == code and sample.labels.get("method") == "GetOnlineFeatures")

    before = refused("PERMISSION_DENIED"), refused("UNAUTHENTICATED")
    call(access_server, "GetOnlineFeatures", read("vault"), tokens["ranker-app"])
    call(access_server, "GetOnlineFeatures", read("vault"), "grn_forged")
    call(access_server, "GetOnlineFeatures", read("no_such_view_probe"), tokens["ranker-app"])
    assert (refused("PERMISSION_DENIED"), refused("UNAUTHENTICATED")) == (before[0] + 2, before[1] + 1)
    from prometheus_client import generate_latest

    exposed = generate_latest(access_server.servicer.metrics.registry).decode()
    assert all(word not in exposed for word in ("no_such_view_probe", "ranker-app", "ada@example.org", "email"))
    # The per-view freshness gauges (granero_view_*) name registered views for operators, a
    # bounded set no caller can grow; every other family names none.
    request_side = "\n".join(line for line in exposed.splitlines() if "granero_view_" not in line)
    assert "vault" not in request_side
