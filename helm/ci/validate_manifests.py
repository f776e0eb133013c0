"""Check rendered Kubernetes manifests against the API server's schemas, offline.

`helm template` proves a chart renders; it does not prove the API server would accept the
result (a field at the wrong level, a string where an integer belongs, an API version a
cluster no longer serves). kubernetes-validate ships the OpenAPI schemas of each Kubernetes
release, so each object is checked here in strict mode (unknown fields are errors, as with
kubectl's default server-side field validation) for every requested Kubernetes version.

Stricter than the kubernetes-validate CLI in two ways: a kind or apiVersion without a schema
is an error (the CLI only warns, so a removed API version would pass), and the Pod manifests
embedded in ConfigMaps labelled ``granero.io/pod-templates`` (Spark's driver and executor
pod templates) are validated as Pods.

Usage: python validate_manifests.py --kube-version 1.30.0 [--kube-version ...] FILE...
(``-`` reads standard input). Exit status 1 when any problem is found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import VersionNotSupportedError

POD_TEMPLATES_LABEL = "granero.io/pod-templates"


def load_documents(text: str) -> list[dict]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def describe(doc: dict) -> str:
    name = (doc.get("metadata") or {}).get("name", "<no name>")
    return f"{doc.get('kind', '<no kind>')}/{name}"


def embedded_pod_templates(doc: dict) -> Iterator[tuple[str, dict]]:
    """(where, pod) for each Pod manifest stored in a pod-templates ConfigMap."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    if doc.get("kind") != "ConfigMap" or labels.get(POD_TEMPLATES_LABEL) != "true":
        return
    for key, text in sorted((doc.get("data") or {}).items()):
        yield f"{describe(doc)}[{key}]", yaml.safe_load(text)


def schema_problems(where: str, doc: dict, versions: Iterable[str]) -> list[str]:
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "<root>"
            problems.append(f"{where} (k8s {version}): {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{where} (k8s {version}): no schema for "
                f"{doc.get('apiVersion')} {doc.get('kind')}: not served by this version"
            )
    return problems


def manifest_problems(docs: list[dict], versions: list[str]) -> list[str]:
    """Every problem found in a rendered release; an empty list means it is valid."""
    if not docs:
        return ["no manifests rendered"]
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            problems.append(f"not a Kubernetes object: {str(doc)[:80]!r}")
            continue
        where = describe(doc)
        key = (doc["kind"], (doc.get("metadata") or {}).get("name", ""))
        if key in seen:
            problems.append(f"{where}: rendered twice")
        seen.add(key)
        problems += schema_problems(where, doc, versions)
        for template_where, pod in embedded_pod_templates(doc):
            if not isinstance(pod, dict) or pod.get("kind") != "Pod":
                problems.append(f"{template_where}: not a Pod manifest")
            else:
                problems += schema_problems(template_where, pod, versions)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-version", action="append", required=True, dest="versions")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    failed = False
    for file in args.files:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
        docs = load_documents(text)
        try:
            problems = manifest_problems(docs, args.versions)
        except VersionNotSupportedError:
            print(
                f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
                f"{args.versions}",
                file=sys.stderr,
            )
            return 2
        for problem in problems:
            print(f"INVALID {file}: {problem}")
        print(
            f"{'FAIL' if problems else 'ok'}: {file}: {len(docs)} objects, "
            f"{len(problems)} problems, k8s {', '.join(args.versions)}"
        )
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
