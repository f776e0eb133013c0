"""The chart's access values: secure defaults (deny-by-default, audit log on), token and JWT
Secrets mounted as directories and named in the rendered config, mTLS roles with a client CA,
and the render-time rule for a JWT without an audience."""

from __future__ import annotations

import yaml

from granero.config import load_config
from tests.helm.test_chart import helm, helm_template, render  # noqa: F401 (helm: fixture)

ACCESS = ["--set", "server.access.tokens.secretName=api-tokens",
          "--set", "server.access.jwt.secretName=issuer-keys",
          "--set", "server.access.jwt.audience=granero",
          "--set", "server.access.jwt.issuer=https://issuer.example",
          "--set", "server.tls.clientCA.secretName=clients",
          "--set-json", 'server.access.mtlsRoles={"spiffe://rides/ranker":["ranking"]}']


def rendered(docs: list[dict]) -> tuple[dict, dict]:
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "feature_store.yaml" in d.get("data", {})]
    config = yaml.safe_load(maps[0]["data"]["feature_store.yaml"])
    server = [d for d in docs if d["kind"] == "Deployment"]
    return config, server[0]["spec"]["template"]["spec"]


def test_defaults_deny_by_default_and_keep_an_audit_log(helm, tmp_path):  # noqa: F811 (the imported fixture)
    config, pod = rendered(render(helm))
    assert config["access"] == {"authentication": [], "deny_by_default": True,
                                "audit_log": "/var/log/granero/audit.jsonl"}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["audit"]["mountPath"] == "/var/log/granero"
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump(config))
    assert load_config(tmp_path).access.deny_by_default


def test_token_jwt_and_mtls_values_reach_the_config_and_the_pod(helm, tmp_path):  # noqa: F811 (the imported fixture)
    config, pod = rendered(render(helm, *ACCESS))
    assert config["access"]["authentication"] == [
        {"type": "tokens", "file": "/etc/granero/access/tokens/tokens.yaml"},
        {"type": "jwt", "keys_file": "/etc/granero/access/jwt/keys", "audience": "granero",
         "issuer": "https://issuer.example"},
        {"type": "mtls", "roles": {"spiffe://rides/ranker": ["ranking"]}},
    ]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["access-tokens"]["secret"] == {
        "secretName": "api-tokens", "items": [{"key": "tokens.yaml", "path": "tokens.yaml"}]}
    assert volumes["access-jwt"]["secret"]["items"] == [{"key": "jwks.json", "path": "keys"}]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert "subPath" not in mounts["access-tokens"] and mounts["access-tokens"]["readOnly"]
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump(config))
    assert [b.type for b in load_config(tmp_path).access.authentication] == ["tokens", "jwt", "mtls"]


def test_jobs_do_not_mount_the_access_secrets(helm):  # noqa: F811 (the imported fixture)
    docs = render(helm, *ACCESS)
    for doc in docs:
        if doc["kind"] in ("CronJob", "Job"):
            assert "access-tokens" not in yaml.safe_dump(doc)


def test_a_jwt_secret_without_an_audience_is_refused(helm):  # noqa: F811 (the imported fixture)
    result = helm_template(helm, "--set", "server.access.jwt.secretName=issuer-keys")
    assert result.returncode != 0 and "server.access.jwt.audience" in result.stderr


def test_the_schema_refuses_unknown_access_values(helm):  # noqa: F811 (the imported fixture)
    result = helm_template(helm, "--set", "server.access.tokenz.secretName=x")
    assert result.returncode != 0 and "tokenz" in result.stderr
