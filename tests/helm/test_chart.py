"""The Helm chart: every CI value set renders objects the Kubernetes API accepts, the config it
renders is one Granero loads, and each of the three layers of checks rejects what it should:
values.schema.json (at `helm template`/`install` time), the chart's own cross-field rules, and
schema validation of the rendered objects (kubernetes-validate, offline, strict).

helm comes from helm/install-helm.sh (built once from the Go module proxy, then cached); the
tests skip only when it cannot be obtained.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from granero.config import load_config

pytestmark = pytest.mark.helm

ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = ROOT / "helm"
CHART = HELM_DIR / "granero"
VALUE_SETS = {"default": None} | {
    p.stem: p for p in sorted((HELM_DIR / "ci").glob("values-*.yaml"))
}
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
"""Chart.yaml's kubeVersion floor and the newest schemas kubernetes-validate ships."""


@pytest.fixture(scope="session")
def helm() -> str:
    try:
        result = subprocess.run(
            ["bash", str(HELM_DIR / "install-helm.sh")],
            capture_output=True,
            text=True,
            timeout=1200,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("helm could not be obtained: helm/install-helm.sh timed out")
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-5:])
        pytest.skip(
            f"helm could not be obtained (helm/install-helm.sh exited {result.returncode}):\n{tail}"
        )
    return result.stdout.strip()


@pytest.fixture(scope="session")
def validator() -> ModuleType:
    """helm/ci/validate_manifests.py, the same checker helm/validate.sh runs."""
    path = HELM_DIR / "ci" / "validate_manifests.py"
    spec = importlib.util.spec_from_file_location("granero_chart_validator", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as error:
        pytest.fail(f"{error}: install the dev extra (pip install -e '.[dev]')")
    return module


def helm_template(helm: str, *args: str, kube_version: str = KUBE_VERSIONS[0]):
    return subprocess.run(
        [
            helm,
            "template",
            "granero",
            str(CHART),
            "--namespace",
            "features",
            "--kube-version",
            kube_version,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def render(helm: str, *args: str, kube_version: str = KUBE_VERSIONS[0]) -> list[dict]:
    result = helm_template(helm, *args, kube_version=kube_version)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def values_args(value_set: str) -> list[str]:
    path = VALUE_SETS[value_set]
    return [] if path is None else ["--values", str(path)]


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_value_set_renders_objects_the_api_accepts(helm, validator, value_set, kube_version):
    docs = render(helm, *values_args(value_set), kube_version=kube_version)
    assert validator.manifest_problems(docs, [kube_version]) == []


def test_helm_lint_is_clean(helm):
    for value_set in VALUE_SETS:
        result = subprocess.run(
            [
                helm,
                "lint",
                str(CHART),
                "--strict",
                "--kube-version",
                KUBE_VERSIONS[0],
                *values_args(value_set),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{value_set}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_feature_store_yaml_loads_in_granero(helm, value_set, tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-secret")
    docs = render(helm, *values_args(value_set))
    configs = [
        d for d in docs if d["kind"] == "ConfigMap" and "feature_store.yaml" in d.get("data", {})
    ]
    assert configs
    for config_map in configs:
        (tmp_path / "feature_store.yaml").write_text(config_map["data"]["feature_store.yaml"])
        config = load_config(tmp_path)
        assert config.online_store.type == "redis"
        if "${REDIS_PASSWORD}" in config_map["data"]["feature_store.yaml"]:
            assert "from-the-secret" in config.online_store.url


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_notes_render(helm, value_set, tmp_path):
    """NOTES.txt is only rendered by `helm install`; render a copy of it as a ConfigMap."""
    chart = shutil.copytree(CHART, tmp_path / "granero")
    (chart / "notes.txt").write_text((chart / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "notes-probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: |\n    {{- tpl (.Files.Get "notes.txt") . | nindent 4 }}\n'
    )
    result = subprocess.run(
        [
            helm,
            "template",
            "granero",
            str(chart),
            "--kube-version",
            KUBE_VERSIONS[0],
            "--show-only",
            "templates/notes-probe.yaml",
            *values_args(value_set),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    notes = yaml.safe_load(result.stdout)["data"]["notes"]
    assert "port-forward svc/" in notes and "grpc.health.v1.Health/Check" in notes


def test_server_deployment_contract(helm):
    docs = render(helm)
    config = yaml.safe_load(find(docs, "ConfigMap", "granero-config")["data"]["feature_store.yaml"])
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    # on the plain-text health port: the kubelet's gRPC probe cannot speak TLS
    for probe in ("startupProbe", "livenessProbe"):  # a Redis outage restarts no pod
        assert server[probe]["grpc"] == {"port": 6567, "service": "granero.liveness"}
    assert server["readinessProbe"]["grpc"] == {"port": 6567}  # the store's health
    assert config["serving"]["health_port"] == 6567
    assert config["serving"]["limits"]["max_batch_size"] == 1000
    pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + config["serving"]["drain_seconds"]
    assert {p["name"]: p["containerPort"] for p in server["ports"]} == {
        "grpc": 6566,
        "metrics": 9090,
        "health": 6567,
    }
    assert server["args"][:2] == ["granero", "serve"] and "--metrics-port" in server["args"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    assert mounts["/repo/feature_store.yaml"]["subPath"] == "feature_store.yaml"
    assert "/tmp" in mounts
    service = find(docs, "Service", "granero")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "grpc": 6566,
        "metrics": 9090,
    }
    assert find(docs, "HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"
    assert "replicas" not in find(docs, "Deployment")["spec"], "the HPA owns the replica count"


def test_materialization_in_spark_kubernetes_mode(helm):
    docs = render(helm)
    cron = find(docs, "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[:3] == ["spark-submit", "--master", "k8s://https://kubernetes.default.svc"]
    assert args[args.index("--deploy-mode") + 1] == "cluster"
    assert args[-4:] == [
        "local:///app/spark_jobs/materialize.py",
        "--repo",
        "/repo",
        "--incremental",
    ]
    assert pod["serviceAccountName"] == "granero-spark"
    role = find(docs, "Role")
    (rule,) = role["rules"]
    assert set(rule["resources"]) == {"pods", "services", "configmaps", "persistentvolumeclaims"}
    assert {"create", "delete", "get", "list", "watch"} <= set(rule["verbs"])
    assert find(docs, "RoleBinding")["subjects"][0]["name"] == "granero-spark"
    templates = find(docs, "ConfigMap", "granero-spark-pods")["data"]
    assert set(templates) == {"driver.yaml", "executor.yaml"}


def test_materialization_on_an_existing_spark_cluster(helm):
    docs = render(helm, *values_args("values-cluster"))
    job_pod = find(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = job_pod["containers"][0]["args"]
    assert args[:3] == ["spark-submit", "--master", "spark://spark-master.spark.svc:7077"]
    assert "spark.driver.host=$(POD_IP)" in args
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding", "HorizontalPodAutoscaler")]
    config = yaml.safe_load(
        find(docs, "ConfigMap", "features-config")["data"]["feature_store.yaml"]
    )
    assert config["online_store"]["cluster"] is True
    assert config["spark"]["conf"]["spark.executor.cores"] == "2", "Spark conf values are strings"


@pytest.mark.parametrize(
    ("override", "reported_at"),
    [
        (["--set", "onlineStore.type=memcached"], "/onlineStore/type"),
        (["--set", "spark.mode=yarn"], "/spark/mode"),
        (["--set", "server.replicaCount=3"], "additional properties 'replicaCount'"),
        (["--set", "featureStore.registry.path=data/registry"], "/featureStore/registry/path"),
        (["--set", "spark.mode=standalone"], "/spark/standalone/masterUrl"),
        (["--set-string", "server.port=6566"], "/server/port"),
        # an empty selector would admit every pod of the namespace
        (["--set-json", 'server.networkPolicy.clientLabels={"granero.io/client":null}'],
         "/server/networkPolicy/clientLabels"),
        (["--set", "server.tls.secretName=Not_A_Name"], "/server/tls/secretName"),
    ],
)
def test_values_schema_rejects_bad_values(helm, override, reported_at):
    result = helm_template(helm, *override)
    assert result.returncode != 0, "helm template accepted a value the schema forbids"
    assert "don't meet the specifications of the schema" in result.stderr
    assert reported_at in result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            ["--set", "server.terminationGracePeriodSeconds=20"],
            "must exceed server.preStopSleepSeconds",
        ),
        (
            ["--set", "onlineStore.redis.url=redis://:${REDIS_PASSWORD}@redis:6379/0"],
            "set onlineStore.auth",
        ),
        (
            ["--set", "featureRepo.mountFromConfigMap=a", "--set", "featureRepo.existingClaim=b"],
            "not both",
        ),
        (
            ["--set", "server.tls.enabled=false", "--set", "server.insecure=true",
             "--set", "server.tls.clientCA.secretName=clients"],
            "server.tls.clientCA needs TLS",
        ),
        (["--set", "server.healthPort=6566"], "server.healthPort must differ"),
    ],
)
def test_chart_rules_reject_inconsistent_values(helm, override, message):
    result = helm_template(helm, *override)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("override", "where", "message"),
    [
        # requests/limits level forgotten: the API server's strict field validation rejects it
        (
            ["--set-json", 'server.resources={"cpu":"500m","memory":"1Gi"}'],
            "Deployment/granero",
            "'cpu', 'memory' were unexpected",
        ),
        # an env value must be a string; YAML makes 30 a number
        (
            ["--set-json", 'extraEnv=[{"name":"TIMEOUT_SECONDS","value":30}]'],
            "Deployment/granero",
            "is not of type 'string'",
        ),
        # a quoted uid in a values file
        (["--set-string", "podSecurityContext.runAsUser=10001"], "Deployment/granero", "runAsUser"),
        # only inside Spark's driver pod template, which Kubernetes sees only when Spark submits it
        (
            [
                "--set-json",
                'spark.kubernetes.tolerations=[{"key":"spot","operator":"Exists",'
                '"effect":"NoExecute","tolerationSeconds":"60"}]',
            ],
            "ConfigMap/granero-spark-pods[driver.yaml]",
            "tolerationSeconds",
        ),
    ],
)
def test_invalid_objects_pass_helm_but_fail_kubernetes_validation(
    helm, validator, override, where, message
):
    docs = render(helm, *override)  # the schema and the templates let it through...
    problems = validator.manifest_problems(docs, KUBE_VERSIONS[:1])
    assert any(p.startswith(where) and message in p for p in problems), problems  # ...this does not


def test_removed_api_versions_are_errors_not_warnings(validator):
    beta_hpa = {
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "old"},
        "spec": {},
    }
    (problem,) = validator.manifest_problems([beta_hpa], ["1.30.0"])
    assert "no schema for autoscaling/v2beta2" in problem


def test_kubernetes_older_than_the_floor_is_refused(helm):
    result = helm_template(helm, kube_version="1.29.0")
    assert result.returncode != 0
    assert "chart requires kubeVersion" in result.stderr


def test_values_schema_is_strict_at_every_level_it_defines():
    schema = json.loads((CHART / "values.schema.json").read_text())

    def objects(node: dict, path: str = ""):
        if node.get("type") == "object" and "properties" in node:
            yield path or "<root>", node
        for key, child in (node.get("properties") or {}).items():
            yield from objects(child, f"{path}.{key}")

    loose = [
        path for path, node in objects(schema) if node.get("additionalProperties") is not False
    ]
    assert loose == []


# -- transport security -----------------------------------------------------------------------


def server_pod(docs: list[dict]) -> tuple[dict, dict, dict]:
    """The server's pod spec, its container, and the feature_store.yaml it reads."""
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    configs = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-config")]
    return pod, pod["containers"][0], yaml.safe_load(configs[0]["data"]["feature_store.yaml"])


def test_tls_is_the_default_from_a_secret_mounted_as_a_directory(helm):
    """Files of a subPath mount never see a renewed Secret: the directory mount is what makes
    rotation without a restart work in a cluster."""
    pod, server, config = server_pod(render(helm))
    assert config["serving"]["tls"] == {"cert_file": "/etc/granero/tls/tls.crt",
                                        "key_file": "/etc/granero/tls/tls.key"}
    assert "insecure" not in config["serving"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"] == {"secretName": "granero-tls"}
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == "tls"]
    assert mount == {"name": "tls", "mountPath": "/etc/granero/tls", "readOnly": True}
    grpc_port = find(render(helm), "Service", "granero")["spec"]["ports"][0]
    assert "appProtocol" not in grpc_port, "h2c would tell proxies the port is plain text"


def test_mutual_tls_mounts_the_client_ca_and_names_it_in_the_config(helm):
    pod, server, config = server_pod(render(helm, *values_args("values-local")))
    assert config["serving"]["tls"]["client_ca_file"] == "/etc/granero/client-ca/ca.crt"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "granero-tls"
    assert volumes["client-ca"]["secret"] == {"secretName": "feature-clients-ca",
                                              "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert "subPath" not in mounts["client-ca"] and "subPath" not in mounts["tls"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_server_accepts_the_transport_every_value_set_renders(helm, value_set, tmp_path,
                                                                  monkeypatch):
    """The chart binds 0.0.0.0; Granero refuses plain text there unless told: each value set's
    config must pass that check (TLS files, or insecure on purpose)."""
    from granero.serving.tls import require_safe_transport

    monkeypatch.setenv("REDIS_PASSWORD", "from-the-secret")
    _, _, config = server_pod(render(helm, *values_args(value_set)))
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump(config))
    serving = load_config(tmp_path).serving
    assert serving.host == "0.0.0.0"
    require_safe_transport(serving, warn=False)
    assert (serving.tls is None) == (value_set == "values-cluster")


def test_plain_text_needs_insecure_and_is_then_said_in_the_config(helm):
    refused = helm_template(helm, "--set", "server.tls.enabled=false")
    assert refused.returncode != 0
    assert "set server.insecure=true to do that on purpose" in refused.stderr
    docs = render(helm, *values_args("values-cluster"))
    _, _, config = server_pod(docs)
    assert config["serving"]["insecure"] is True and "tls" not in config["serving"]
    assert find(docs, "Service", "features")["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"


def test_network_policy_admits_only_labelled_clients_to_the_grpc_port(helm):
    docs = render(helm)
    policy = find(docs, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    assert policy["policyTypes"] == ["Ingress"]
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    assert by_port["grpc"]["from"] == [{"podSelector": {"matchLabels": {"granero.io/client": "true"}}}]
    assert "from" not in by_port["health"]  # probes; it tells SERVING or not, nothing else
    assert set(by_port) == {"grpc", "health", "metrics"}


def test_network_policy_clients_from_labelled_namespaces_and_scrapers(helm):
    policy = find(render(helm, *values_args("values-cluster")), "NetworkPolicy")["spec"]
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    clients = {"matchLabels": {"granero.io/client": "true"}}
    assert by_port["grpc"]["from"] == [
        {"podSelector": clients},
        {"namespaceSelector": {"matchLabels": {"team": "ml"}}, "podSelector": clients},
    ]
    assert by_port["metrics"]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert not [d for d in render(helm, "--set", "server.networkPolicy.enabled=false")
                if d["kind"] == "NetworkPolicy"]
