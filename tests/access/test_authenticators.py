"""Each authentication backend alone: the tokens file's checks, JWT keys from a PEM or JWKS file
and their rotation, the mTLS names; and the mTLS identity on a real TLS server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from granero.access.config import AccessConfig
from granero.access.jwt_bearer import JwtAuthenticator, JwtConfig
from granero.access.mtls import MtlsAuthenticator, MtlsConfig
from granero.access.principal import ANONYMOUS, Credentials, Principal, authenticate
from granero.access.tokens import TokenAuthenticator, TokensConfig, new_token, token_digest
from granero.errors import ConfigError, PermissionDenied, Unauthenticated
from tests.access.conftest import AUDIENCE, ISSUER, Issuer


def tokens_file(tmp_path: Path, text: str) -> TokensConfig:
    (tmp_path / "tokens.yaml").write_text(text)
    return TokensConfig(file=str(tmp_path / "tokens.yaml"), reload_seconds=0)


@pytest.mark.parametrize(("text", "reason"), [
    ("tokens: [{name: a, sha256: 'not-hex', roles: []}]", "tokens[0]: sha256: must be a SHA-256"),
    ("tokens: [{sha256: '" + "a" * 64 + "'}]", "tokens[0]: name: Field required"),
    ("tokens: [{name: a, sha256: '" + "a" * 64 + "', secret: x}]", "tokens[0]: secret: Extra inputs"),
    ("tokens: {a: b}", "expected a mapping with a 'tokens' list"),
    ("tokens: [", "is not valid YAML"),
    ("tokens: [{name: a, sha256: '" + "a" * 64 + "'}, {name: b, sha256: '" + "A" * 64 + "'}]",
     "tokens[1] (b): the same digest appears twice"),
])
def test_a_bad_tokens_file_is_a_config_error_naming_file_entry_and_field(tmp_path, text, reason):
    with pytest.raises(ConfigError) as caught:
        TokenAuthenticator(tokens_file(tmp_path, text))
    assert str(tmp_path / "tokens.yaml") in str(caught.value) and reason in str(caught.value)


def test_a_broken_edit_keeps_the_last_good_tokens(tmp_path):
    token = new_token()
    config = tokens_file(tmp_path, f"tokens: [{{name: app, sha256: '{token_digest(token)}'}}]")
    authenticator = TokenAuthenticator(config)
    (tmp_path / "tokens.yaml").write_text("tokens: [")
    assert authenticator.authenticate(Credentials(token)) == Principal("app", frozenset(), "token")


def test_tokens_are_stored_hashed_only():
    token = new_token()
    assert token.startswith("grn_") and len(token) > 40 and token_digest(token) != token
    assert token_digest(token) == token_digest(token) and len(token_digest(token)) == 64


def jwt_config(path: Path, **more: object) -> JwtConfig:
    return JwtConfig(keys_file=str(path), audience=AUDIENCE, issuer=ISSUER, reload_seconds=0, **more)


def test_a_jwt_verifies_against_a_pem_public_key(tmp_path):
    issuer = Issuer()
    pem = issuer.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "issuer.pem").write_bytes(pem)
    authenticator = JwtAuthenticator(jwt_config(tmp_path / "issuer.pem"))
    principal = authenticator.authenticate(Credentials(issuer.token("svc", roles=["a"], groups=["g"])))
    assert principal == Principal("svc", frozenset({"a", "g"}), "jwt")
    assert authenticator.authenticate(Credentials(new_token())) is None  # not a JWT: another's kind


def test_rotated_keys_take_effect_and_empty_the_cache(tmp_path):
    old, new = Issuer("old"), Issuer("new")
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [old.jwk()]}))
    authenticator = JwtAuthenticator(jwt_config(keys))
    token = old.token()
    assert authenticator.authenticate(Credentials(token)).name == "svc-ranker"
    keys.write_text(json.dumps({"keys": [new.jwk()]}))
    with pytest.raises(Unauthenticated, match="key id"):
        authenticator.authenticate(Credentials(token))  # cached before, refused after rotation
    assert authenticator.authenticate(Credentials(new.token())).name == "svc-ranker"


def test_symmetric_algorithms_are_refused_in_config(tmp_path):
    with pytest.raises(ValueError, match="asymmetric"):
        jwt_config(tmp_path / "k", algorithms=["HS256"])


def test_mtls_names_the_principal_and_leaves_bearers_to_others():
    authenticator = MtlsAuthenticator(MtlsConfig(roles={"spiffe://rides/ranker": ["ranking"]}))
    seen = authenticator.authenticate(Credentials(None, ("ranker", "spiffe://rides/ranker")))
    assert seen == Principal("ranker", frozenset({"ranking"}), "mtls")
    assert authenticator.authenticate(Credentials("grn_x", ("ranker",))) is None
    assert authenticator.authenticate(Credentials()) is None


def test_the_chain_never_downgrades_a_bad_bearer_to_anonymous():
    assert authenticate([], Credentials(), anonymous=True) == ANONYMOUS
    with pytest.raises(Unauthenticated, match="not a known token"):
        authenticate([], Credentials("grn_x"), anonymous=True)
    with pytest.raises(Unauthenticated, match="credentials required"):
        authenticate([], Credentials(), anonymous=False)
    assert AccessConfig().admits_anonymous and not AccessConfig(
        authentication=[MtlsConfig()]).admits_anonymous


@pytest.mark.redis
def test_an_mtls_client_is_its_certificate_name_on_a_real_server(access_store, tmp_path):
    from granero.serving.client import Client
    from granero.serving.config import ServingConfig, TlsConfig
    from granero.serving.server import build_server
    from granero.serving.tls import ClientTls
    from tests.conftest import scaled
    from tests.serving.certs import Authority

    ca, clients = Authority(), Authority("clients CA")
    cert, key = ca.server().write(tmp_path / "server", "server")
    tls = TlsConfig(cert_file=str(cert), key_file=str(key), client_ca_file=str(clients.write(tmp_path)))
    access = AccessConfig(authentication=[MtlsConfig(roles={"spiffe://rides/ranker": ["ranking"]})])

    def client_for(name: str, uri: str) -> ClientTls:
        c, k = clients.client(name, uri=uri).write(tmp_path / name, name)
        return ClientTls(ca_file=str(ca.write(tmp_path / "trust")), cert_file=str(c), key_file=str(k))

    with build_server(access_store, ServingConfig(port=0, tls=tls), access=access) as handle:
        target = f"localhost:{handle.port}"
        with Client(target, timeout=scaled(10), tls=client_for("ranker", "spiffe://rides/ranker")) as client:
            result = client.get_online_features([{"driver_id": 1}], feature_service="ranker")
            assert result.to_dict()["driver_stats__conv_rate"] == [0.9]
        with Client(target, timeout=scaled(10), tls=client_for("intruder", "spiffe://x/y")) as client, \
                pytest.raises(PermissionDenied, match="intruder may not read_online"):
            client.get_online_features([{"driver_id": 1}], feature_service="ranker")
