"""The chart's stream Deployment: off by default; when enabled, one replica (Recreate: never two
queries on one checkpoint) running `granero stream`, its views and streaming config reaching the
pod and a feature_store.yaml Granero loads, objects the API accepts; bad values are refused.
``stream.split``: two such Deployments, ``--queries online`` and ``--queries durable``."""

from __future__ import annotations

import yaml

from granero.config import load_config
from tests.helm.test_chart import KUBE_VERSIONS, helm, helm_template, render, validator  # noqa: F401 (fixtures)

STREAM = ["--set", "stream.enabled=true", "--set", "stream.views={driver_stats,trips}",
          "--set", "stream.triggerInterval=1 second", "--set", "stream.offlineTriggerInterval=1 minute"]


def stream_deployments(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-stream")]


def test_off_by_default(helm):  # noqa: F811 (the imported fixture)
    docs = render(helm)
    assert stream_deployments(docs) == []
    assert any(d["kind"] == "Deployment" for d in docs)  # the server is rendered, the stream is not


def test_enabled_stream_runs_one_query_process_with_its_config(helm, validator, tmp_path):  # noqa: F811
    docs = render(helm, *STREAM)
    [deployment] = stream_deployments(docs)
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == ["granero", "stream", "--repo", "/repo", "--views", "driver_stats,trips"]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and "feature_store.yaml" in d.get("data", {}))
    (tmp_path / "feature_store.yaml").write_text(config_map["data"]["feature_store.yaml"])
    streaming = load_config(tmp_path).streaming
    assert streaming.checkpoint_location == "/data/streaming/checkpoints"
    assert streaming.trigger_interval == "1 second"
    assert streaming.offline_trigger_interval == "1 minute"
    for version in KUBE_VERSIONS:
        assert validator.manifest_problems(render(helm, *STREAM, kube_version=version), [version]) == []


def test_split_stream_runs_the_online_and_the_durable_queries_in_deployments_of_their_own(
    helm, validator,  # noqa: F811 (the imported fixtures)
):
    docs = render(helm, *STREAM, "--set", "stream.split=true")
    deployments = {d["metadata"]["name"].rsplit("-", 1)[-1]: d for d in docs if d["kind"] == "Deployment"
                   and "-stream-" in d["metadata"]["name"]}
    assert sorted(deployments) == ["durable", "online"] and stream_deployments(docs) == []
    selectors = set()
    for queries, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
        container = spec["template"]["spec"]["containers"][0]
        assert container["args"] == ["granero", "stream", "--repo", "/repo", "--views", "driver_stats,trips",
                                     "--queries", queries]
        selectors.add(tuple(sorted(spec["selector"]["matchLabels"].items())))
    assert len(selectors) == 2  # neither Deployment adopts the other's pods
    for version in KUBE_VERSIONS:
        rendered = render(helm, *STREAM, "--set", "stream.split=true", kube_version=version)
        assert validator.manifest_problems(rendered, [version]) == []


def test_bad_stream_values_are_refused(helm):  # noqa: F811 (the imported fixture)
    for bad in (["--set", "stream.triggerInterval=soon"], ["--set", "stream.offlineTriggerInterval=later"],
                ["--set", "stream.views={not-a-name}"],
                ["--set", "stream.replicas=2"], ["--set", "stream.split=yes"]):
        result = helm_template(helm, "--set", "stream.enabled=true", *bad)
        assert result.returncode != 0, bad
        assert "stream" in result.stderr, result.stderr


def test_default_config_has_no_streaming_section(helm):  # noqa: F811 (the imported fixture)
    config_map = next(d for d in render(helm) if d["kind"] == "ConfigMap" and "feature_store.yaml" in d.get("data", {}))
    assert "streaming" not in yaml.safe_load(config_map["data"]["feature_store.yaml"])
