#!/usr/bin/env bash
# Installs a pinned tool, built from the Go module proxy, into a cache outside the repository, and prints its
# path (for cert-manager-crds, the CRD directory of the pinned module):
#
#   helm=$(hack/tools.sh helm)
#   kind=$(hack/tools.sh kind)
#   versitygw=$(hack/tools.sh versitygw)       # the S3-compatible store the tests upload to
#   helmdocs=$(hack/tools.sh helm-docs)        # the chart's README from values.yaml (go run ./hack/docgen)
#   crds=$(hack/tools.sh cert-manager-crds)
#
# Versions: hack/versions.sh. Cache: ${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/tools/NAME-VERSION.
# Safe to run concurrently: one build per tool at a time (flock), the others wait for it and reuse it. Needs Go
# on PATH; progress goes to stderr, the path alone to stdout. Works from any directory.
set -euo pipefail
hack=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=hack/versions.sh
source "$hack/versions.sh"

cache=$TANDEM_CACHE_DIR/tools
log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not on PATH"

# go_tool NAME PACKAGE VERSION: prints the cached binary NAME of `go install PACKAGE@VERSION`, building it first
# when missing.
go_tool() {
	local name=$1 pkg=$2 version=$3
	local dir=$cache/$name-$version
	if [[ ! -x $dir/$name ]]; then
		mkdir -p -- "$cache"
		exec 9>"$cache/.$name-$version.lock"
		flock 9
		if [[ ! -x $dir/$name ]]; then
			log "building $name $version from the Go module proxy (a minute or two the first time)"
			local tmp
			tmp=$(mktemp -d "$cache/.$name-XXXXXX")
			# shellcheck disable=SC2064 # expand now: tmp is local
			trap "rm -rf '$tmp'" EXIT
			(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod GOBIN=$tmp CGO_ENABLED=0 go install "$pkg@$version") >&2 ||
				die "building $name ($pkg@$version) failed"
			mkdir -p -- "$dir"
			mv -f -- "$tmp/$name" "$dir/$name"
		fi
	fi
	printf '%s\n' "$dir/$name"
}

case "${1:-}" in
helm) go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" ;;
kind) go_tool kind sigs.k8s.io/kind "$KIND_VERSION" ;;
versitygw) go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" ;;
helm-docs) go_tool helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION" ;;
cert-manager-crds)
	dir=$(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir/deploy/crds ]] || die "cert-manager $CERT_MANAGER_VERSION has no deploy/crds in the module cache"
	echo "$dir/deploy/crds"
	;;
*)
	die "usage: hack/tools.sh helm|helm-docs|kind|versitygw|cert-manager-crds"
	;;
esac
