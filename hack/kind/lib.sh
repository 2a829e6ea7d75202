# shellcheck shell=bash
# shellcheck disable=SC2034 # KIND_REPO_ROOT and friends are for the sourcing scripts
# Helpers shared by the scripts in hack/kind/. Sourced, never run.
# The caller sets KIND_LOG_PREFIX before sourcing.

KIND_SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
KIND_REPO_ROOT=$(cd -- "$KIND_SCRIPT_DIR/../.." && pwd -P)
# shellcheck source=hack/kind/versions.sh
source "$KIND_SCRIPT_DIR/versions.sh"
# shellcheck source=hack/lib/apt.sh
source "$KIND_REPO_ROOT/hack/lib/apt.sh"

log() { printf '%s: %s\n' "${KIND_LOG_PREFIX:-kind}" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "${KIND_LOG_PREFIX:-kind}" "$*" >&2
	exit 1
}

# need CMD [HINT]: die unless CMD is on PATH.
need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH${2:+; $2}"
}

need_root() {
	[[ $(id -u) == 0 ]] || die "$1 needs root (debootstrap and chroot); run it as root"
}

# The kind binary: $KIND if set, else kind on PATH or in $(go env GOPATH)/bin
# when it reports $KIND_VERSION; else the one hack/tools.sh builds.
kind_bin() {
	local k
	for k in "${KIND:-}" "$(command -v kind 2>/dev/null || true)" "$(go env GOPATH 2>/dev/null)/bin/kind"; do
		[[ -n $k && -x $k ]] || continue
		if [[ $("$k" version 2>/dev/null) == "kind $KIND_VERSION "* ]]; then
			printf '%s\n' "$k"
			return 0
		fi
	done
	"$KIND_REPO_ROOT/hack/tools.sh" kind
}

# Directory of the kind module in the module cache (downloads it if needed).
kind_module_dir() {
	local dir
	dir=$(cd /tmp && GOWORK=off GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || true
	[[ -n $dir && -d $dir/images/base/files ]] ||
		die "cannot find sigs.k8s.io/kind@$KIND_VERSION in the Go module cache (go mod download failed?)"
	printf '%s\n' "$dir"
}

# Directory of the k8s.io/kubernetes module in the module cache.
kubernetes_module_dir() {
	local dir
	dir=$(cd -- "$KIND_REPO_ROOT/hack/control-plane/kubernetes" && GOWORK=off go list -mod=readonly -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null) || true
	if [[ -z $dir || ! -d $dir ]]; then
		(cd -- "$KIND_REPO_ROOT/hack/control-plane/kubernetes" && GOWORK=off go mod download k8s.io/kubernetes) >&2 ||
			die "go mod download k8s.io/kubernetes failed"
		dir=$(cd -- "$KIND_REPO_ROOT/hack/control-plane/kubernetes" && GOWORK=off go list -mod=readonly -m -f '{{.Dir}}' k8s.io/kubernetes)
	fi
	printf '%s\n' "$dir"
}

# The apt mirror used for debootstrap: DEBIAN_MIRROR, else the first
# deb.debian.org-style URI in the machine's apt sources, else the default.
debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		printf '%s\n' "$DEBIAN_MIRROR"
		return
	fi
	local uri
	uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -n -e 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' \
			-e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\(http[^[:space:]]*\/debian\)\/\{0,1\}[[:space:]].*/\2/p' |
		head -n1) || true
	printf '%s\n' "${uri:-$DEBIAN_MIRROR_DEFAULT}"
}

# hash_inputs FILE_OR_STRING...: short sha256 over the arguments; arguments
# that are existing files or directories contribute their contents.
hash_inputs() {
	local a
	for a in "$@"; do
		if [[ -d $a ]]; then
			(cd -- "$a" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		elif [[ -f $a ]]; then
			sha256sum <"$a"
		else
			printf '%s\n' "$a"
		fi
	done | sha256sum | cut -c1-12
}

# with_lock FILE: take an exclusive flock on FILE (fd 9) for the rest of the script.
with_lock() {
	mkdir -p -- "$(dirname -- "$1")"
	exec 9>"$1"
	if ! flock -n 9; then
		log "another run holds $1; waiting for it"
		flock 9
	fi
}

# debootstrap_rootfs NAME PACKAGES(comma separated): prints the path of a
# cached tarball of a minbase $DEBIAN_SUITE rootfs with those packages.
# Extra setup can be done by the caller on the extracted tree.
debootstrap_tar() {
	local name=$1 packages=$2 mirror key tar tmp
	mirror=$(debian_mirror)
	key=$(hash_inputs "$DEBIAN_SUITE" "$packages" "$mirror")
	tar=$KIND_CACHE/rootfs/$name-$DEBIAN_SUITE-$key.tar
	if [[ -f $tar ]]; then
		printf '%s\n' "$tar"
		return
	fi
	need_root "debootstrap of the $name rootfs"
	command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
	mkdir -p -- "$KIND_CACHE/rootfs"
	tmp=$(mktemp -d "$KIND_CACHE/rootfs/.$name.XXXXXX")
	log "debootstrap $DEBIAN_SUITE ($name: $packages) from $mirror"
	local start=$SECONDS
	if ! debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
		tail -n 30 "$tmp/debootstrap.log" >&2
		rm -rf -- "$tmp"
		die "debootstrap of the $name rootfs failed (log above)"
	fi
	# Make the tree small and reproducible enough: no apt lists or caches.
	rm -rf -- "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"* "$tmp/root/var/log/"*
	tar --numeric-owner --xattrs -C "$tmp/root" -cf "$tmp/rootfs.tar" . || die "cannot tar the $name rootfs"
	mv -f -- "$tmp/rootfs.tar" "$tar"
	rm -rf -- "$tmp"
	log "$name rootfs ready in $((SECONDS - start))s: $tar"
	printf '%s\n' "$tar"
}

# image_exists REF: the local Docker engine has it.
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# docker_import TAG STOPSIGNAL [docker import --change args...] < rootfs.tar
# `docker import` cannot set STOPSIGNAL; a one-line `docker build` on top can
# (metadata only, no RUN, so no network and about a second).
docker_import() {
	local tag=$1 stop_signal=$2 base
	shift 2
	base=$tag-import
	docker import "$@" - "$base" >/dev/null || die "docker import of $tag failed"
	local out
	out=$(printf 'FROM %s\nSTOPSIGNAL %s\n' "$base" "$stop_signal" | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - 2>&1) || {
		printf '%s\n' "$out" >&2
		die "docker build (STOPSIGNAL) of $tag failed"
	}
	docker rmi "$base" >/dev/null 2>&1 || true
}

# prune_superseded DIR/NAME-KEY.tar: remove the other DIR/NAME-*.tar (older
# builds of the same image; each can be a GiB).
prune_superseded() {
	local keep=$1 f
	for f in "${keep%-*}"-*.tar; do
		[[ $f == "$keep" || ! -f $f ]] || rm -f -- "$f"
	done
}

# kind_create_cluster NAME IMAGE KUBECONFIG [KIND-ARGS...]: deletes a cluster of that name if there is one,
# creates it from cluster.yaml with the node image, writes its kubeconfig, and waits until every node of
# cluster.yaml is Ready. The caller's kubectl must be "$KIND_BIN_DIR/kubectl --kubeconfig KUBECONFIG".
kind_create_cluster() {
	local name=$1 image=$2 kubeconfig=$3
	shift 3
	local kind_sh=$KIND_SCRIPT_DIR/kind.sh kubectl=("$KIND_BIN_DIR/kubectl" --kubeconfig "$kubeconfig") nodes
	if "$kind_sh" get clusters 2>/dev/null | grep -qx -- "$name"; then
		log "deleting the existing cluster $name"
		"$kind_sh" delete cluster --name "$name" >&2
	fi
	mkdir -p -- "$(dirname -- "$kubeconfig")"
	"$kind_sh" create cluster --name "$name" --image "$image" --config "$KIND_SCRIPT_DIR/cluster.yaml" \
		--kubeconfig "$kubeconfig" "$@" >&2
	nodes=$(grep -Ec '^[[:space:]]*- role:' "$KIND_SCRIPT_DIR/cluster.yaml")
	for _ in $(seq 1 120); do
		(($("${kubectl[@]}" get nodes --no-headers 2>/dev/null | wc -l) >= nodes)) && break
		sleep 1
	done
	"${kubectl[@]}" wait --for=condition=Ready nodes --all --timeout=180s >&2 || {
		"${kubectl[@]}" describe nodes >&2 || true
		die "not every node of $name became Ready"
	}
}

# kind_release_cluster NAME KUBECONFIG: deletes the cluster, or with KEEP_CLUSTER=1 keeps it and says how to
# reach and delete it. For the EXIT traps of the scripts that create one.
kind_release_cluster() {
	local kind_sh=$KIND_SCRIPT_DIR/kind.sh
	if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
		log "keeping cluster $1 (KEEP_CLUSTER=1); kubeconfig: $2"
		log "delete it with: $kind_sh delete cluster --name $1"
	else
		log "deleting cluster $1"
		"$kind_sh" delete cluster --name "$1" >&2 || true
	fi
}
