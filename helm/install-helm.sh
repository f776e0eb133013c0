#!/usr/bin/env bash
# Print the path of a pinned helm binary, building it on first use.
#
# No prebuilt binaries can be downloaded on our machines, but the Go module proxy is
# reachable, so helm is compiled with `go install` and cached. The link flags mirror
# helm's own release build: without them `helm version` has no patch number and the
# default Kubernetes version used by `helm template` falls back to v1.20.
#
#   HELM=/path/to/helm        use this binary instead (no pin check)
#   GRANERO_HELM_VERSION      override the pin (default below)
#   GRANERO_CACHE_DIR         cache root (default ~/.cache/granero)
#   GO                        go binary (default: go on PATH, else /usr/local/go/bin/go)
#
# Only the binary path goes to stdout; progress goes to stderr.
set -euo pipefail

if [[ -n "${HELM:-}" ]]; then
    [[ -x "$HELM" ]] || { echo "install-helm: HELM=$HELM is not executable" >&2; exit 1; }
    echo "$HELM"
    exit 0
fi

version="${GRANERO_HELM_VERSION:-v3.22.0}"
cache_dir="${GRANERO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/granero}"
bin_dir="$cache_dir/bin"
target="$bin_dir/helm-$version"

built_version() {
    "$1" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ -x "$target" && "$(built_version "$target")" == "$version" ]]; then
    echo "$target"
    exit 0
fi

go_bin="${GO:-$(command -v go || true)}"
go_bin="${go_bin:-/usr/local/go/bin/go}"
[[ -x "$go_bin" ]] || { echo "install-helm: no Go toolchain found (set GO=...)" >&2; exit 1; }

mkdir -p "$bin_dir"
work="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"  # outside any module, so `go install pkg@version` ignores the caller's go.mod

# The default Kubernetes version helm assumes is that of the client-go it is built with.
gomod="$(env -u GOFLAGS "$go_bin" mod download -json "helm.sh/helm/v3@$version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
k8s_minor="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")"
[[ -n "$k8s_minor" ]] || { echo "install-helm: cannot read client-go version from $gomod" >&2; exit 1; }

ldflags="-w -s"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

echo "install-helm: building helm $version with $("$go_bin" env GOVERSION) (a few minutes when the Go build cache is cold)" >&2
start=$SECONDS
env -u GOFLAGS CGO_ENABLED=0 GOBIN="$work" \
    "$go_bin" install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version" >&2
mv -f "$work/helm" "$target"  # atomic: a concurrent run sees the old state or a whole binary
echo "install-helm: built $target in $((SECONDS - start))s" >&2

actual="$(built_version "$target")"
[[ "$actual" == "$version" ]] || { echo "install-helm: built binary reports '$actual', expected $version" >&2; exit 1; }
echo "$target"
