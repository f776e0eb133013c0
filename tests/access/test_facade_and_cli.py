"""The Python API's and CLI's advisory checks, and the CLI's access options: apply judged by the
registered permissions, materialize and reads refused before any work, ``list features --pii``,
``get-online --token`` and the exit codes 10 and 11."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from granero.access.facade import TOKEN_ENV
from granero.access.principal import Principal
from granero.access.tokens import new_token
from granero.cli.main import app
from granero.errors import PermissionDenied, Unauthenticated
from granero.feature_store import FeatureStore
from tests.access.conftest import write_access_repo, write_tokens

runner = CliRunner()
APPLIERS = '''
appliers = Permission(principals=["release-bot"], actions=["apply"], feature_views=["*"],
                      feature_services=["*"])
'''


def invoke(*args: str, **env: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env=env)


@pytest.fixture()
def repo(tmp_path, access_url):
    return write_access_repo(tmp_path / "repo", access_url, "access_facade")


def test_apply_is_judged_by_the_registered_permissions(repo):
    FeatureStore(repo).apply()  # no apply permission registered: apply is not enforced
    with (repo / "permissions.py").open("a") as file:
        file.write(APPLIERS)
    FeatureStore(repo).apply()
    (repo / "views.py").write_text((repo / "views.py").read_text().replace('ttl="1d", tags', 'ttl="2d", tags'))
    store = FeatureStore(repo)
    store.access.principal = Principal("intern")
    with pytest.raises(PermissionDenied, match="intern may not apply feature view 'driver_stats'"):
        store.apply()
    with (repo / "permissions.py").open("a") as file:
        file.write('interns = Permission(principals=["intern"], actions=["apply"], feature_views=["driver_stats"])\n')
    with pytest.raises(PermissionDenied):  # granting itself in the same apply does not count
        store.apply()
    assert store.registry.current().version == 2
    store.access.principal = Principal("release-bot")
    assert store.apply()[1].version == 3
    store.access.principal = Principal("intern")
    (repo / "entities.py").write_text((repo / "entities.py").read_text().replace(")", ', owner="x")', 1))
    with pytest.raises(PermissionDenied, match="intern may not apply entity 'driver'"):
        store.apply()  # changing an entity needs a grant on every view
    (repo / "entities.py").write_text((repo / "entities.py").read_text().replace(', owner="x"', ""))
    (repo / "views.py").write_text((repo / "views.py").read_text().replace('ttl="2d", tags', 'ttl="3d", tags'))
    assert store.apply()[1].version == 4


def test_reads_and_materialize_are_refused_before_any_work(repo):
    with (repo / "permissions.py").open("a") as file:
        file.write('ops = Permission(roles=["ops"], actions=["read_offline", "materialize"], feature_views=["*"])\n')
    store = FeatureStore(repo)
    store.apply()
    store.access.principal = Principal("svc", frozenset({"ranking"}))
    with pytest.raises(PermissionDenied, match="personal data"):
        store.get_online_features([{"driver_id": 1}], feature_service="ranker")
    with pytest.raises(PermissionDenied, match="may not read_offline"):
        store.training_manifest(feature_service="ranker")
    with pytest.raises(PermissionDenied, match="may not materialize feature view 'driver_stats'"):
        store.materialize(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert store._spark is None  # refused before a JVM was started


def test_the_local_principal_is_the_token_when_set(repo, tmp_path, monkeypatch):
    token = new_token()
    write_tokens(tmp_path / "tokens.yaml", {"auditor": token})
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + f"access:\n  authentication:\n"
                                           f"    - {{type: tokens, file: {tmp_path / 'tokens.yaml'}}}\n")
    monkeypatch.setenv(TOKEN_ENV, token)
    assert FeatureStore(repo).access.principal.name == "auditor"
    monkeypatch.setenv(TOKEN_ENV, "grn_forged")
    with pytest.raises(Unauthenticated):
        FeatureStore(repo).access.principal  # noqa: B018
    monkeypatch.delenv(TOKEN_ENV)
    assert FeatureStore(repo).access.principal.via == "local"


def test_list_features_pii(repo):
    FeatureStore(repo).apply()
    result = invoke("list", "features", "--repo", str(repo), "--pii", "--json")
    assert result.exit_code == 0, result.output
    assert [(r["view"], r["feature"]) for r in json.loads(result.stdout)] == [("driver_stats", "email")]
    everything = json.loads(invoke("list", "features", "--repo", str(repo), "--json").stdout)
    assert len(everything) == 4


def test_cli_exit_codes_for_refused_and_unauthenticated(repo, tmp_path):
    (repo / "permissions.py").write_text((repo / "permissions.py").read_text() + APPLIERS)
    FeatureStore(repo).apply()
    (repo / "views.py").write_text((repo / "views.py").read_text().replace('ttl="1d", tags', 'ttl="2d", tags'))
    assert invoke("apply", "--repo", str(repo)).exit_code == 11
    token = new_token()
    write_tokens(tmp_path / "tokens.yaml", {"auditor": token})
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text() + f"access:\n  authentication:\n"
                                           f"    - {{type: tokens, file: {tmp_path / 'tokens.yaml'}}}\n")
    result = invoke("apply", "--repo", str(repo), **{TOKEN_ENV: "grn_forged"})
    assert result.exit_code == 10, result.output
    assert TOKEN_ENV not in os.environ


@pytest.mark.redis
def test_get_online_with_a_token_over_grpc(access_server, access_store, tokens):
    target = access_server.address
    args = ("get-online", "--target", target, "-s", "ranker", "-e", "driver_id=1", "--json")
    assert invoke(*args).exit_code == 10
    hidden = invoke(*args, "--token", tokens["nobody"])  # the CLI asks what it may see first
    assert hidden.exit_code == 8 and "known: []" in hidden.output, hidden.output
    result = invoke(*args, GRANERO_TOKEN=tokens["ranker-app"])
    assert result.exit_code == 0, result.output
    assert "driver_stats__email" not in result.stdout and "0.9" in result.stdout


def test_token_new_prints_a_token_whose_entry_authenticates_it(tmp_path):
    from granero.access.principal import Credentials
    from granero.access.tokens import TokenAuthenticator, TokensConfig

    result = invoke("token", "new", "fraud-model", "--role", "fraud", "--json")
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    (tmp_path / "tokens.yaml").write_text(json.dumps({"tokens": [made["entry"]]}))
    assert made["token"] not in (tmp_path / "tokens.yaml").read_text()
    authenticator = TokenAuthenticator(TokensConfig(file=str(tmp_path / "tokens.yaml")))
    assert authenticator.authenticate(Credentials(made["token"])) == Principal(
        "fraud-model", frozenset({"fraud"}), "token")
    human = invoke("token", "new", "x")
    assert human.exit_code == 0 and "grn_" in human.stdout and "sha256:" in human.stdout


def test_prune_is_judged_as_apply_removing_the_views(repo, access_url):
    import redis

    with (repo / "permissions.py").open("a") as file:
        file.write(APPLIERS)
    store = FeatureStore(repo)
    store.apply()
    client = redis.Redis.from_url(access_url)
    orphan = f"{store.config.project}:dropped_view:row".encode()
    client.set(orphan, b"v")  # the online data of a view the registry no longer has
    store.access.principal = Principal("intern")
    with pytest.raises(PermissionDenied, match="intern may not apply feature view 'dropped_view'"):
        store.prune_online()
    assert client.exists(orphan)
    store.access.principal = Principal("release-bot")
    assert store.prune_online().dropped == {"dropped_view": 1} and not client.exists(orphan)
