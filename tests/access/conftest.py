"""A served repo with permissions, PII and two services, callers with tokens and JWTs.

Keys and tokens are made in the test: RSA keys with ``cryptography`` for JWTs (a JWKS file the
server reads), random tokens whose SHA-256 goes in the tokens file. The server re-reads both files
and the registry on every call (``reload_seconds=0``, ``registry_refresh_seconds=0``), so a test
can revoke a token or apply a permission and see the next call change.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from granero.access.config import AccessConfig
from granero.access.jwt_bearer import JwtConfig
from granero.access.tokens import TokensConfig, new_token, token_digest
from granero.feature_store import FeatureStore
from granero.serving.config import ServingConfig
from granero.serving.server import ServerHandle, build_server
from tests.serving.conftest import write_rows

AUDIENCE, ISSUER = "granero", "https://issuer.test"
NOW = datetime.now(UTC)
FILES = {
    "entities.py": '''
        from granero import Entity
        driver = Entity(join_keys={"driver_id": "int64"})
    ''',
    "views.py": '''
        from entities import driver
        from granero import FeatureView, Field, FileSource
        driver_stats = FeatureView(
            entities=[driver], ttl="1d", tags={"team": "supply"},
            source=FileSource(path="data/driver_stats", timestamp_field="event_timestamp"),
            features=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int64"),
                      Field(name="email", dtype="string", tags={"pii": "true"})])
        vault_stats = FeatureView(
            entities=[driver], ttl="1d",
            source=FileSource(path="data/vault_stats", timestamp_field="event_timestamp"),
            features=[Field(name="score", dtype="float64")])
    ''',
    "services.py": '''
        from views import driver_stats, vault_stats
        from granero import FeatureService
        ranker = FeatureService(features=[driver_stats])
        vault = FeatureService(features=[vault_stats])
    ''',
    "permissions.py": '''
        from granero import Permission
        rankers = Permission(roles=["ranking"], actions=["read_online"], feature_services=["ranker"])
        auditors = Permission(principals=["auditor"], actions=["read_online"],
                              feature_views=["driver_stats"], pii=True)
    ''',
}
ROWS = {
    "driver_stats": [{"driver_id": 1, "event_timestamp": NOW - timedelta(minutes=1),
                      "conv_rate": 0.9, "trips": 12, "email": "ada@example.org"}],
    "vault_stats": [{"driver_id": 1, "event_timestamp": NOW - timedelta(minutes=1), "score": 0.5}],
}
CALLERS = {"ranker-app": ["ranking"], "auditor": [], "nobody": []}


def write_access_repo(root: Path, redis_url: str, project: str) -> Path:
    root.mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        f"project: {project}\nonline_store: {{type: redis, url: '{redis_url}', expire_keys: false}}\n")
    for name, source in FILES.items():
        (root / name).write_text(textwrap.dedent(source))
    return root


def write_tokens(path: Path, tokens: dict[str, str]) -> None:
    """``tokens``: principal name -> token; only digests are written."""
    entries = [{"name": name, "sha256": token_digest(token), "roles": CALLERS.get(name, [])}
               for name, token in tokens.items()]
    path.write_text(json.dumps({"tokens": entries}))  # JSON is YAML


class Issuer:
    """Signs JWTs with an RSA key whose public half is in the JWKS file the server trusts."""

    def __init__(self, kid: str = "k1") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def token(self, sub: str = "svc-ranker", *, roles: list[str] | None = None, aud: str = AUDIENCE,
              iss: str = ISSUER, expires_in: float = 300, **claims: object) -> str:
        payload = {"sub": sub, "aud": aud, "iss": iss, "exp": int(time.time() + expires_in),
                   "roles": roles if roles is not None else ["ranking"], **claims}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def access_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/9"


@pytest.fixture(scope="module")
def access_store(tmp_path_factory: pytest.TempPathFactory, access_url: str) -> Iterator[FeatureStore]:
    repo = write_access_repo(tmp_path_factory.mktemp("access") / "repo", access_url, "access_test")
    with FeatureStore(repo) as store:
        store.apply()
        for view, rows in ROWS.items():
            assert write_rows(store, view, rows) == len(rows)
        yield store


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    return {name: new_token() for name in CALLERS}


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory, tokens, issuer) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    write_tokens(folder / "tokens.yaml", tokens)
    (folder / "jwks.json").write_text(json.dumps({"keys": [issuer.jwk()]}))
    return folder


def access_config(secrets_dir: Path, **more: object) -> AccessConfig:
    return AccessConfig(authentication=[
        TokensConfig(file=str(secrets_dir / "tokens.yaml"), reload_seconds=0),
        JwtConfig(keys_file=str(secrets_dir / "jwks.json"), audience=AUDIENCE, issuer=ISSUER,
                  reload_seconds=0),
    ], audit_log=str(secrets_dir / "audit.jsonl"), **more)


def serve(store: FeatureStore, access: AccessConfig) -> ServerHandle:
    return build_server(store, ServingConfig(port=0, registry_refresh_seconds=0), access=access)


@pytest.fixture(scope="module")
def access_server(access_store, secrets_dir) -> Iterator[ServerHandle]:
    with serve(access_store, access_config(secrets_dir)) as handle:
        yield handle


def audit_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
