#!/usr/bin/env bash
# Lint and render the chart for each value set, then check every rendered object against the
# Kubernetes API schemas of the oldest and newest supported Kubernetes versions (offline).
#
#   helm/validate.sh                 the chart's defaults and every helm/ci/values-*.yaml
#   helm/validate.sh FILE...         only these value files ("default" = the chart's defaults)
#
#   GRANERO_PYTHON         interpreter with (or to receive) kubernetes-validate
#                          (default: the project's .venv, else python3)
#   GRANERO_KUBE_VERSIONS  default "1.30.0 1.37.0" (Chart.yaml's kubeVersion floor, newest schemas)
#   GRANERO_HELM_OUT       keep the rendered manifests in this directory
#
# Exits non-zero on the first value set that fails any step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
chart="$here/granero"
read -r -a kube_versions <<< "${GRANERO_KUBE_VERSIONS:-1.30.0 1.37.0}"
kv_requirement="kubernetes-validate==1.37.0"

step() { printf '\n== %s\n' "$*"; }
elapsed() { printf '   (%ss)\n' "$((SECONDS - $1))"; }

step "helm"
start=$SECONDS
helm="$("$here/install-helm.sh")"
"$helm" version --short
elapsed "$start"

step "kubernetes-validate"
python="${GRANERO_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
if ! "$python" -c 'import kubernetes_validate' 2>/dev/null; then
    echo "installing $kv_requirement into $python"
    "$python" -m pip install --quiet "$kv_requirement"
fi
"$python" -c 'import kubernetes_validate as kv; print("kubernetes-validate", kv.__version__)'

if [[ $# -gt 0 ]]; then
    value_sets=("$@")
else
    value_sets=(default "$here"/ci/values-*.yaml)
fi

out="${GRANERO_HELM_OUT:-$(mktemp -d)}"
mkdir -p "$out"
[[ -n "${GRANERO_HELM_OUT:-}" ]] || trap 'rm -rf "$out"' EXIT

kube_flags=()
for version in "${kube_versions[@]}"; do kube_flags+=(--kube-version "$version"); done

for value_set in "${value_sets[@]}"; do
    values=()
    name=default
    if [[ "$value_set" != default ]]; then
        values=(--values "$value_set")
        name="$(basename "$value_set" .yaml)"
    fi
    for version in "${kube_versions[@]}"; do
        step "$name: helm lint --strict (k8s $version)"
        start=$SECONDS
        "$helm" lint "$chart" --strict --kube-version "$version" "${values[@]}"
        # lint only logs `fail` from templates; template turns it into an error
        step "$name: helm template (k8s $version)"
        "$helm" template granero "$chart" --namespace granero --kube-version "$version" \
            "${values[@]}" > "$out/$name-$version.yaml"
        echo "rendered $(grep -c '^kind:' "$out/$name-$version.yaml") objects to $out/$name-$version.yaml"
        elapsed "$start"
    done
    step "$name: kubernetes-validate --strict"
    start=$SECONDS
    # Each rendering is checked against its own Kubernetes version's schemas.
    for version in "${kube_versions[@]}"; do
        "$python" "$here/ci/validate_manifests.py" --kube-version "$version" "$out/$name-$version.yaml"
    done
    elapsed "$start"
done

step "all value sets valid: ${value_sets[*]##*/}"
