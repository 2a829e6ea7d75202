#!/usr/bin/env bash
# Builds every binary of tandem's offline kind node image from the Go module
# proxy and the kubernetes module's sources, and prints the one directory
# that holds them:
#   kubelet kubeadm kubectl kube-apiserver kube-controller-manager
#   kube-scheduler kube-proxy   (hack/control-plane/kubernetes wrapper module)
#   etcd                        (hack/control-plane/etcd wrapper module)
#   coredns                     (go install github.com/coredns/coredns)
#   crictl                      (go install sigs.k8s.io/cri-tools/cmd/crictl)
#   pause                       (build/pause/linux/pause.c, gcc -static)
# Cached in $KIND_BIN_DIR (see versions.sh), keyed by versions. Cold: about
# 6-10 minutes on 2 cores (Kubernetes dominates); warm: milliseconds.
# Needs: Go 1.26+, gcc (with glibc's static libc, Debian's libc6-dev), flock.
set -euo pipefail
KIND_LOG_PREFIX=kind-binaries
# shellcheck source=hack/kind/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

KUBE_BINARIES=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
ALL_BINARIES=("${KUBE_BINARIES[@]}" etcd coredns crictl pause)

kube_module_dir=$KIND_REPO_ROOT/hack/control-plane/kubernetes
etcd_module_dir=$KIND_REPO_ROOT/hack/control-plane/etcd
# shellcheck source=hack/lib/kube-build.sh
source "$KIND_REPO_ROOT/hack/lib/kube-build.sh"
require_pin "$kube_module_dir" k8s.io/kubernetes "$KUBERNETES_VERSION"
require_pin "$etcd_module_dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"

bin_dir=$KIND_BIN_DIR

mapfile -t missing < <(missing_in "$bin_dir" "${ALL_BINARIES[@]}")
if ((${#missing[@]} == 0)); then
	printf '%s\n' "$bin_dir"
	exit 0
fi

mkdir -p -- "$bin_dir" || die "cannot create $bin_dir"
need flock "util-linux's flock is needed"
with_lock "$bin_dir/.lock"
mapfile -t missing < <(missing_in "$bin_dir" "${ALL_BINARIES[@]}")
if ((${#missing[@]} == 0)); then
	printf '%s\n' "$bin_dir"
	exit 0
fi
rm -rf -- "$bin_dir"/.build.*
need go "Go 1.26+ is needed to build ${missing[*]}"

tmp_dir=$(mktemp -d "$bin_dir/.build.XXXXXX")
trap 'rm -rf -- "$tmp_dir"' EXIT
install_built() {
	local b
	for b in "$@"; do
		[[ -x $tmp_dir/$b ]] || die "the build reported success but produced no $b"
		mv -f -- "$tmp_dir/$b" "$bin_dir/$b"
	done
}
is_missing() {
	local m
	for m in "${missing[@]}"; do [[ $m == "$1" ]] && return 0; done
	return 1
}

start=$SECONDS
log "building ${missing[*]} into $bin_dir"

kube_todo=()
for b in "${KUBE_BINARIES[@]}"; do is_missing "$b" && kube_todo+=("$b"); done
if ((${#kube_todo[@]} > 0)); then
	log "compiling ${kube_todo[*]} from k8s.io/kubernetes $KUBERNETES_VERSION (5-10 minutes on 2 cores with a cold Go build cache)"
	kube_build "$kube_module_dir" "$KUBERNETES_VERSION" "$tmp_dir" "${kube_todo[@]}"
	install_built "${kube_todo[@]}"
	log "built ${kube_todo[*]} ($((SECONDS - start))s so far)"
fi

if is_missing etcd; then
	log "compiling etcd from go.etcd.io/etcd/server/v3 $ETCD_VERSION"
	etcd_build "$etcd_module_dir" "$tmp_dir"
	install_built etcd
fi

# go install of a module at a version: no local go.mod involved.
go_install() {
	(cd "$tmp_dir" && GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$tmp_dir go install -trimpath -ldflags "-s -w" "$1") >&2 ||
		die "go install $1 failed; see the go output above"
}
if is_missing coredns; then
	log "compiling coredns $COREDNS_VERSION"
	go_install "github.com/coredns/coredns@$COREDNS_VERSION"
	install_built coredns
fi
if is_missing crictl; then
	log "compiling crictl $CRI_TOOLS_VERSION"
	go_install "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
	install_built crictl
fi

if is_missing pause; then
	need gcc "apt-get install gcc libc6-dev (pause is C)"
	src=$(kubernetes_module_dir)/build/pause/linux/pause.c
	[[ -f $src ]] || die "$src not found in the k8s.io/kubernetes module"
	log "compiling pause $PAUSE_VERSION from $src"
	gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$tmp_dir/pause" "$src" >&2 ||
		die "gcc -static of pause.c failed (is libc6-dev installed?)"
	strip "$tmp_dir/pause" 2>/dev/null || true
	install_built pause
fi

# kubeadm must agree with versions.sh about the images it will ask for.
want=$(printf '%s\n' \
	"$IMAGE_REGISTRY/kube-apiserver:$KUBERNETES_VERSION" \
	"$IMAGE_REGISTRY/kube-controller-manager:$KUBERNETES_VERSION" \
	"$IMAGE_REGISTRY/kube-scheduler:$KUBERNETES_VERSION" \
	"$IMAGE_REGISTRY/kube-proxy:$KUBERNETES_VERSION" \
	"$IMAGE_REGISTRY/coredns/coredns:$COREDNS_VERSION" \
	"$IMAGE_REGISTRY/pause:$PAUSE_VERSION" \
	"$IMAGE_REGISTRY/etcd:$ETCD_IMAGE_TAG" | sort)
got=$("$bin_dir/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null | sort) ||
	die "kubeadm config images list failed"
[[ $want == "$got" ]] || die "kubeadm $KUBERNETES_VERSION wants images other than versions.sh pins:
$got
versions.sh gives:
$want"

log "done in $((SECONDS - start))s"
printf '%s\n' "$bin_dir"
