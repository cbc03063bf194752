#!/usr/bin/env bash
# Builds lab/cluster (kubefence-lab-cluster: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl in one binary) and prints the binary's path on stdout.
#
# The binary is cached under a hash of the module's sources (go.mod, go.sum, *.go) and this
# script:
#   ${KUBEFENCE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubefence/lab-cluster}/<hash>/
#     kubefence-lab-cluster
#     kubectl -> kubefence-lab-cluster
# When that binary exists the script only prints its path (no go invocation). Otherwise it
# builds it, downloading modules through the Go module proxy on a fresh machine; a cold build
# takes many minutes on 2 cores (see lab/cluster/README.md). Quiet except for errors.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lab/cluster" && pwd)
cache=${KUBEFENCE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubefence/lab-cluster}

# Hash of the sources (file names included, in a fixed order) and of this script (the flags).
hash=$( (cat "${BASH_SOURCE[0]}"; cd "$src" && LC_ALL=C ls go.mod go.sum ./*.go | LC_ALL=C sort \
  | while read -r f; do printf '%s\n' "$f"; cat "$f"; done) | sha256sum | cut -c1-16)
out=$cache/$hash
bin=$out/kubefence-lab-cluster

if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "build-lab-cluster: go is not installed" >&2; exit 1; }
  mkdir -p "$out"
  tmp=$(mktemp "$out/.build.XXXXXX")
  log=$(mktemp)
  trap 'rm -f "$tmp" "$log"' EXIT
  # The version the components report (kubectl version, /version), as upstream's release
  # builds stamp it; taken from the k8s.io/kubernetes requirement in go.mod.
  version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$src/go.mod")
  [[ $version =~ ^v([0-9]+)\.([0-9]+)\. ]] \
    || { echo "build-lab-cluster: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=${BASH_REMATCH[1]}"
    ldflags+=" -X $pkg.gitMinor=${BASH_REMATCH[2]} -X $pkg.gitTreeState=clean"
  done
  # -mod=readonly: go.sum must already be complete; -trimpath -s -w: smaller, reproducible.
  # go's own output ("go: downloading ...") is shown only if the build fails.
  (cd "$src" && go build -mod=readonly -trimpath -ldflags="$ldflags" -o "$tmp" .) >"$log" 2>&1 \
    || { cat "$log" >&2; echo "build-lab-cluster: go build failed" >&2; exit 1; }
  mv -f "$tmp" "$bin"   # atomic: a half-written binary is never at $bin
  rm -f "$log"
  trap - EXIT
fi
ln -sfn kubefence-lab-cluster "$out/kubectl"
echo "$bin"
