#!/usr/bin/env bash
# Provisions the binaries of a real local Kubernetes control plane for
# controller-runtime's envtest (kube-apiserver, kube-controller-manager,
# kubectl and etcd) and prints the one directory that holds them, so that
#
#   export KUBEBUILDER_ASSETS="$(hack/control-plane.sh)"
#
# works from any directory. No prebuilt download is used: the binaries are
# compiled from the Go module proxy through the pinned wrapper modules in
# hack/control-plane/{kubernetes,etcd} and cached outside the repository in
#   ${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/control-plane/<versions>/bin
# A cold build takes 10-15 minutes on 2 cores (seconds with a warm Go build
# cache); a warm run builds nothing and takes milliseconds.
# If KUBEBUILDER_ASSETS already holds executable kube-apiserver and etcd,
# that directory is used as it is.
#
# Needs: bash, Go 1.26+ on PATH and access to the Go module proxy (cold
# builds only). Progress goes to stderr; stdout is exactly one line.
set -euo pipefail

KUBE_BINARIES=(kube-apiserver kube-controller-manager kubectl)
ALL_BINARIES=("${KUBE_BINARIES[@]}" etcd)

log() { printf 'control-plane: %s\n' "$*" >&2; }
die() {
	printf 'control-plane: error: %s\n' "$*" >&2
	exit 1
}

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=hack/versions.sh
source "$script_dir/versions.sh"
kube_module_dir=$script_dir/control-plane/kubernetes
etcd_module_dir=$script_dir/control-plane/etcd

# 1. Binaries supplied by the caller win; nothing is built.
if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
	if [[ -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/etcd ]]; then
		(cd -- "$KUBEBUILDER_ASSETS" && pwd -P)
		exit 0
	fi
	log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks an executable kube-apiserver or etcd; ignoring it"
fi

# The wrapper modules must pin the same versions as this script, or the
# version-keyed cache directory would hold binaries of other versions.
# shellcheck source=hack/lib/kube-build.sh
source "$script_dir/lib/kube-build.sh"
require_pin "$kube_module_dir" k8s.io/kubernetes "$KUBERNETES_VERSION"
require_pin "$etcd_module_dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"

version_dir=$TANDEM_CACHE_DIR/control-plane/${KUBERNETES_VERSION}-etcd${ETCD_VERSION#v}
mkdir -p -- "$version_dir/bin" || die "cannot create cache directory $version_dir/bin"
version_dir=$(cd -- "$version_dir" && pwd -P)
bin_dir=$version_dir/bin


# 2. Warm cache: nothing to do.
mapfile -t missing < <(missing_in "$bin_dir" "${ALL_BINARIES[@]}")
if ((${#missing[@]} == 0)); then
	printf '%s\n' "$bin_dir"
	exit 0
fi

# 3. Build what is missing. One build at a time per version directory.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$version_dir/.lock"
	if ! flock -n 9; then
		log "another control-plane build is running; waiting for it"
		flock 9
	fi
	mapfile -t missing < <(missing_in "$bin_dir" "${ALL_BINARIES[@]}")
	if ((${#missing[@]} == 0)); then
		printf '%s\n' "$bin_dir"
		exit 0
	fi
	# Holding the lock, any build directory left here is from a killed run.
	rm -rf -- "$version_dir"/.build.*
fi

command -v go >/dev/null 2>&1 ||
	die "go is not on PATH; Go 1.26 or newer is needed to build ${missing[*]} (or set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd)"

# Temporary output lives next to bin/ so the final mv is an atomic rename;
# an interrupted build leaves only this directory, which is removed.
tmp_dir=$(mktemp -d "$version_dir/.build.XXXXXX")
trap 'rm -rf -- "$tmp_dir"' EXIT

install_built() {
	local b
	for b in "$@"; do
		mv -f -- "$tmp_dir/$b" "$bin_dir/$b"
	done
}

kube_todo=()
etcd_todo=false
for b in "${missing[@]}"; do
	if [[ $b == etcd ]]; then etcd_todo=true; else kube_todo+=("$b"); fi
done

log "building ${missing[*]} into $bin_dir"
log "this compiles Kubernetes from source: 10-15 minutes on 2 cores with a cold Go build cache, well under a minute with a warm one"
start=$SECONDS

if ((${#kube_todo[@]} > 0)); then
	log "building ${kube_todo[*]} from k8s.io/kubernetes $KUBERNETES_VERSION"
	kube_build "$kube_module_dir" "$KUBERNETES_VERSION" "$tmp_dir" "${kube_todo[@]}"
	install_built "${kube_todo[@]}"
	log "built ${kube_todo[*]} ($((SECONDS - start))s so far)"
fi

if $etcd_todo; then
	log "building etcd from go.etcd.io/etcd/server/v3 $ETCD_VERSION"
	etcd_build "$etcd_module_dir" "$tmp_dir"
	install_built etcd
	log "built etcd ($((SECONDS - start))s so far)"
fi

log "done in $((SECONDS - start))s"
printf '%s\n' "$bin_dir"
