"""``granero push --target`` to a server that speaks mutual TLS and asks for a token: the same
``--tls*`` and ``--token`` options as ``granero get-online``, through typer's runner against a
real server on 127.0.0.1 with certificates made in the test. Each refusal is the same push with
one credential left out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from granero.access.config import AccessConfig
from granero.access.tokens import TokensConfig, new_token, token_digest
from granero.cli.main import app
from granero.feature_store import FeatureStore
from granero.serving.client import Client
from granero.serving.config import ServingConfig, TlsConfig
from granero.serving.server import build_server
from granero.serving.tls import ClientTls
from tests.push.conftest import write_push_repo
from tests.push.test_push import landing_files
from tests.push.test_push_grpc import PERMISSIONS
from tests.serving.certs import Authority

pytestmark = pytest.mark.redis

ROW = {"driver_id": 7, "event_timestamp": "2026-01-07T00:10:00Z", "conv_rate": 0.75, "trips": 2,
       "tier": "gold"}


@pytest.fixture
def tls_server(tmp_path: Path, push_url: str) -> Iterator[tuple[FeatureStore, str, dict[str, str]]]:
    """A store, the server's target and the CLI's credentials (paths and the pusher's token)."""
    repo = write_push_repo(tmp_path / "repo", push_url)
    (repo / "permissions.py").write_text(PERMISSIONS)
    token = new_token()
    (tmp_path / "tokens.yaml").write_text(json.dumps({"tokens": [
        {"name": "pusher", "sha256": token_digest(token), "roles": []}]}))
    ca, clients = Authority(), Authority("clients CA")
    cert, key = ca.server().write(tmp_path / "server", "server")
    client_cert, client_key = clients.client("pusher").write(tmp_path / "client", "pusher")
    tls = TlsConfig(cert_file=str(cert), key_file=str(key), client_ca_file=str(clients.write(tmp_path)))
    access = AccessConfig(authentication=[TokensConfig(file=str(tmp_path / "tokens.yaml"))])
    credentials = {"--tls-ca": str(ca.write(tmp_path / "trust")), "--tls-cert": str(client_cert),
                   "--tls-key": str(client_key), "--token": token}
    with FeatureStore(repo) as store:
        store.apply()
        with build_server(store, ServingConfig(port=0, tls=tls), access=access) as handle:
            yield store, f"localhost:{handle.port}", credentials


def push(target: str, file: Path, credentials: dict[str, str]):
    options = [part for option, value in credentials.items() for part in (option, value)]
    return CliRunner().invoke(app, ["push", "driver_stats", "-f", str(file), "--target", target,
                                    "--json", *options], catch_exceptions=False)


def conv_rate(target: str, credentials: dict[str, str]) -> float | None:
    """Driver 7's conv_rate as the server serves it (the local user may not read in process)."""
    tls = ClientTls(ca_file=credentials["--tls-ca"], cert_file=credentials["--tls-cert"],
                    key_file=credentials["--tls-key"])
    with Client(target, tls=tls, token=credentials["--token"], timeout=60) as client:
        result = client.get_online_features([{"driver_id": 7}], ["driver_stats:conv_rate"])
    return result.to_dict()["driver_stats__conv_rate"][0]


def test_push_over_mutual_tls_with_a_token(tls_server, tmp_path: Path) -> None:
    store, target, credentials = tls_server
    (tmp_path / "rows.json").write_text(json.dumps([ROW]))
    for missing, exit_code in (("--tls-ca", 7), ("--tls-cert", 7), ("--token", 10)):
        without = {o: v for o, v in credentials.items() if o != missing and not (
            missing == "--tls-cert" and o == "--tls-key")}
        refused = push(target, tmp_path / "rows.json", without)
        assert refused.exit_code == exit_code, (missing, refused.output)
        assert conv_rate(target, credentials) is None and landing_files(store) == []
    result = push(target, tmp_path / "rows.json", credentials)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["online_rows"] == 1
    assert conv_rate(target, credentials) == 0.75 and len(landing_files(store)) == 1
