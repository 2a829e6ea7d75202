#!/usr/bin/env bash
# Installs a pinned development tool, built from the Go module proxy, into a cache outside the repository, and
# prints its path:
#
#   helm=$(hack/tools.sh helm)
#   crds=$(hack/tools.sh cert-manager-crds)    # the CRD directory of the pinned cert-manager module
#
# Cache: ${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/tools. Needs Go on PATH; progress goes to stderr.
set -euo pipefail

# --- pinned versions ---------------------------------------------------------
HELM_VERSION=v3.22.0                # helm.sh/helm/v3
CERT_MANAGER_VERSION=v1.21.2        # github.com/cert-manager/cert-manager (CRDs only)
# -----------------------------------------------------------------------------

cache=${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/tools
log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not on PATH"

case "${1:-}" in
helm)
	bin=$cache/helm-$HELM_VERSION/helm
	if [[ ! -x $bin ]]; then
		log "building helm $HELM_VERSION from the Go module proxy (about 2 minutes the first time)"
		tmp=$(mktemp -d "$cache/.helm-XXXXXX" 2>/dev/null || { mkdir -p "$cache" && mktemp -d "$cache/.helm-XXXXXX"; })
		trap 'rm -rf "$tmp"' EXIT
		(cd "$tmp" && GOBIN=$tmp CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") >&2 || die "building helm failed"
		mkdir -p "$(dirname "$bin")"
		mv "$tmp/helm" "$bin"
	fi
	echo "$bin"
	;;
cert-manager-crds)
	dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir/deploy/crds ]] || die "cert-manager $CERT_MANAGER_VERSION has no deploy/crds in the module cache"
	echo "$dir/deploy/crds"
	;;
*)
	die "usage: hack/tools.sh helm|cert-manager-crds"
	;;
esac
