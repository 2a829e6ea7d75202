#!/usr/bin/env bash
# Checks that the Go modules pin the versions hack/versions.sh names: k8s.io/kubernetes and etcd in the wrapper
# modules under hack/control-plane, and k8s.io/api in the root go.mod at the same Kubernetes release. `make lint`
# runs it. Needs bash and grep; works from any directory.
set -euo pipefail
hack=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
log() { printf 'verify-pins: %s\n' "$*" >&2; }
die() { printf 'verify-pins: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/versions.sh
source "$hack/versions.sh"
# shellcheck source=hack/lib/kube-build.sh
source "$hack/lib/kube-build.sh"

require_pin "$hack/control-plane/kubernetes" k8s.io/kubernetes "$KUBERNETES_VERSION"
require_pin "$hack/control-plane/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
# v1.37.2 -> v0.37.2: the staging modules' version of the same release.
staging=v0.${KUBERNETES_VERSION#v1.}
for m in k8s.io/api k8s.io/apimachinery k8s.io/client-go; do
	require_pin "$hack/.." "$m" "$staging"
done
log "ok: Kubernetes $KUBERNETES_VERSION ($staging), etcd $ETCD_VERSION agree across hack/versions.sh and the go.mod files"
