#!/usr/bin/env bash
# Makes (or finds) the kind node image of tandem's offline cluster and prints
# its tag, e.g. tandem-local/kind-node:v1.37.2-0123456789ab, so that
#
#   kind create cluster --image "$(hack/kind/node-image.sh)" ...
#
# works on a machine with a Docker engine, the Go module proxy and a Debian
# mirror, and no container registry. `kind build node-image` cannot do this
# (it downloads release tarballs and images); instead:
#   1. binaries.sh builds kubelet, kubeadm, kubectl, the control-plane
#      components, kube-proxy, etcd, coredns, crictl and pause from source;
#   2. the component images, under the exact registry.k8s.io names
#      `kubeadm config images list` gives, are made with `docker import`
#      (static binaries on an empty rootfs; kube-proxy on a small Debian
#      rootfs with iptables) and `docker save`d into one tar;
#   3. the node rootfs is `debootstrap --variant=minbase` of Debian with kind's
#      base packages plus Debian's containerd, runc and CNI plugins, kind's own
#      files from the kind module's images/base/files, the tar of step 2
#      (imported into containerd at node boot, before the kubelet starts, by
#      tandem-import-images.service) and tandem's stand-in for kindnetd
#      (node/tandem-cni.sh);
#   4. one `docker import` of that tree.
# The tag's hash covers every input (these scripts, node/, kind's files, the
# versions, the Debian package lists and mirror). Everything is cached under
# $KIND_CACHE (versions.sh): the rootfs tars, the binaries and the images
# (images/*.tar), so a warm run with the image in Docker costs about a
# second, and one after `docker rmi` only a `docker load`.
#
# Needs: root (debootstrap, chroot), docker, Go 1.26+, gcc, flock, tar.
set -euo pipefail
KIND_LOG_PREFIX=kind-node-image
# shellcheck source=hack/kind/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

need docker "a Docker engine is needed to make the node image"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed)"
need tar

kind_dir=$(kind_module_dir)
kind_files=$kind_dir/images/base/files
node_dir=$KIND_SCRIPT_DIR/node
mirror=$(debian_mirror)

# Everything the image is made of, except the binaries, which are keyed by
# their versions (in versions.sh) and built deterministically.
hash=$(hash_inputs "$KIND_REPO_ROOT/hack/versions.sh" "$KIND_SCRIPT_DIR/versions.sh" "$KIND_SCRIPT_DIR/lib.sh" "$KIND_SCRIPT_DIR/node-image.sh" \
	"$KIND_REPO_ROOT/hack/control-plane/kubernetes/go.mod" "$node_dir" "$kind_files" "mirror=$mirror" "arch=$(uname -m)")
tag=$LOCAL_REPO/kind-node:$KUBERNETES_VERSION-$hash
image_dir=$KIND_CACHE/images
node_image_tar=$image_dir/kind-node-$KUBERNETES_VERSION-$hash.tar

if image_exists "$tag"; then
	printf '%s\n' "$tag"
	exit 0
fi
mkdir -p -- "$image_dir"
with_lock "$image_dir/.node-image.lock"
if image_exists "$tag"; then
	printf '%s\n' "$tag"
	exit 0
fi
if [[ -f $node_image_tar ]]; then
	log "loading $tag from $node_image_tar"
	docker load -i "$node_image_tar" >&2 || die "docker load -i $node_image_tar failed"
	image_exists "$tag" || die "$node_image_tar did not hold $tag"
	printf '%s\n' "$tag"
	exit 0
fi

need_root "making the node image"
start=$SECONDS
log "making $tag (a few minutes cold; the Kubernetes build alone takes 5-10 when the Go build cache is cold)"
tmp=$(mktemp -d "$image_dir/.build.XXXXXX")
temp_tags=()
jobs_pids=()
cleanup() {
	local pid
	for pid in "${jobs_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	if ((${#temp_tags[@]} > 0)); then
		docker rmi "${temp_tags[@]}" >/dev/null 2>&1 || true
	fi
	rm -rf -- "$tmp"
}
trap cleanup EXIT

# The compile (CPU) and the two debootstraps (network, disk) side by side.
"$KIND_SCRIPT_DIR/binaries.sh" >"$tmp/bin_dir" &
jobs_pids+=($!)
(debootstrap_tar node "$NODE_PACKAGES" >"$tmp/node_rootfs") &
jobs_pids+=($!)
(debootstrap_tar kube-proxy "$KUBE_PROXY_PACKAGES" >"$tmp/kube_proxy_rootfs") &
jobs_pids+=($!)
failed=false
for pid in "${jobs_pids[@]}"; do wait "$pid" || failed=true; done
jobs_pids=()
$failed && die "building the binaries or a rootfs failed (see above)"
bin_dir=$(<"$tmp/bin_dir")
node_rootfs=$(<"$tmp/node_rootfs")
kube_proxy_rootfs=$(<"$tmp/kube_proxy_rootfs")

# --- 2. component images ---------------------------------------------------
components_hash=$(hash_inputs "$KIND_REPO_ROOT/hack/versions.sh" "$KIND_SCRIPT_DIR/versions.sh" "$KIND_SCRIPT_DIR/node-image.sh" "bin=$bin_dir" "kube-proxy-rootfs=$kube_proxy_rootfs")
components_tar=$image_dir/components-$KUBERNETES_VERSION-$components_hash.tar
path_env='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# import_static REF BINARY [ENTRYPOINT]: an image holding only BINARY, in
# /usr/local/bin (on PATH; kubeadm's static pods name it in command:) and, with
# an ENTRYPOINT, as /NAME.
import_static() {
	local ref=$1 bin=$2 entrypoint=${3:-} d
	d=$tmp/img-${bin}
	mkdir -p -- "$d/usr/local/bin" "$d/tmp" "$d/etc"
	chmod 1777 "$d/tmp"
	cp -- "$bin_dir/$bin" "$d/usr/local/bin/$bin"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
	local changes=(--change "$path_env")
	if [[ -n $entrypoint ]]; then
		ln -s "usr/local/bin/$bin" "$d/$bin"
		changes+=(--change "ENTRYPOINT [\"$entrypoint\"]")
	fi
	tar --numeric-owner --owner=0 --group=0 -C "$d" -c . | docker import "${changes[@]}" - "$ref" >/dev/null ||
		die "docker import of $ref failed"
	temp_tags+=("$ref")
}

if [[ ! -f $components_tar ]]; then
	log "making the component images"
	refs=(
		"$IMAGE_REGISTRY/kube-apiserver:$KUBERNETES_VERSION"
		"$IMAGE_REGISTRY/kube-controller-manager:$KUBERNETES_VERSION"
		"$IMAGE_REGISTRY/kube-scheduler:$KUBERNETES_VERSION"
		"$IMAGE_REGISTRY/etcd:$ETCD_IMAGE_TAG"
		"$IMAGE_REGISTRY/coredns/coredns:$COREDNS_VERSION"
		"$IMAGE_REGISTRY/pause:$PAUSE_VERSION"
		"$IMAGE_REGISTRY/kube-proxy:$KUBERNETES_VERSION"
	)
	import_static "${refs[0]}" kube-apiserver
	import_static "${refs[1]}" kube-controller-manager
	import_static "${refs[2]}" kube-scheduler
	import_static "${refs[3]}" etcd
	import_static "${refs[4]}" coredns /coredns
	import_static "${refs[5]}" pause /pause
	# kube-proxy runs iptables/nft: a Debian rootfs with them, plus the binary.
	mkdir -p -- "$tmp/img-kube-proxy"
	tar --numeric-owner -C "$tmp/img-kube-proxy" -xf "$kube_proxy_rootfs"
	cp -- "$bin_dir/kube-proxy" "$tmp/img-kube-proxy/usr/local/bin/kube-proxy"
	tar --numeric-owner -C "$tmp/img-kube-proxy" -c . | docker import --change "$path_env" - "${refs[6]}" >/dev/null ||
		die "docker import of ${refs[6]} failed"
	temp_tags+=("${refs[6]}")
	rm -rf -- "$tmp"/img-*
	docker save -o "$tmp/components.tar" "${refs[@]}" || die "docker save of the component images failed"
	mv -f -- "$tmp/components.tar" "$components_tar"
	prune_superseded "$components_tar"
	log "component images saved to $components_tar ($((SECONDS - start))s so far)"
fi

# --- 3. the node's root filesystem ------------------------------------------
root=$tmp/root
mkdir -p -- "$root"
log "assembling the node rootfs"
tar --numeric-owner --xattrs -C "$root" -xf "$node_rootfs"

# kind's images/base/files, with the modes its Dockerfile gives them.
install -d -m 0755 "$root/kind" "$root/kind/bin" "$root/kind/images" "$root/kind/manifests" "$root/LICENSES" \
	"$root/etc/containerd" "$root/etc/default" "$root/etc/sysctl.d" "$root/etc/systemd/system/kubelet.service.d" \
	"$root/etc/kubernetes/manifests" "$root/etc/cni/net.d" "$root/opt/cni"
install -m 0755 "$kind_files"/usr/local/bin/* "$root/usr/local/bin/"
install -m 0644 "$kind_files"/kind/README.txt "$root/kind/"
install -m 0755 "$kind_files"/kind/bin/* "$root/kind/bin/"
install -m 0644 "$kind_files"/LICENSES/* "$root/LICENSES/"
install -m 0644 "$kind_files"/etc/crictl.yaml "$root/etc/"
install -m 0644 "$kind_files"/etc/containerd/* "$root/etc/containerd/"
install -m 0644 "$kind_files"/etc/default/* "$root/etc/default/"
install -m 0644 "$kind_files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
install -m 0644 "$kind_files"/etc/systemd/system/*.service "$kind_files"/etc/systemd/system/*.slice "$root/etc/systemd/system/"
install -m 0644 "$kind_files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"

# tandem's node files.
install -m 0644 "$node_dir"/*.service "$root/etc/systemd/system/"
install -m 0755 "$node_dir"/*.sh "$root/kind/bin/"

# Binaries: kind expects kubeadm, kubelet and kubectl in /usr/bin.
install -m 0755 "$bin_dir/kubelet" "$bin_dir/kubeadm" "$bin_dir/kubectl" "$root/usr/bin/"
install -m 0755 "$bin_dir/crictl" "$root/usr/local/bin/"
printf '%s\n' "$KUBERNETES_VERSION" >"$root/kind/version"
cp -- "$components_tar" "$root/kind/images/components.tar"

# Debian's layout vs kind's: containerd in /usr/bin, CNI plugins in /usr/lib/cni.
[[ -x $root/usr/bin/containerd ]] || die "the node rootfs has no /usr/bin/containerd (Debian's containerd package)"
[[ -x $root/usr/lib/cni/ptp ]] || die "the node rootfs has no /usr/lib/cni/ptp (Debian's containernetworking-plugins)"
ln -sfn /usr/bin/containerd "$root/usr/local/bin/containerd"
ln -sfn /usr/lib/cni "$root/opt/cni/bin"

# containerd: our pause image; and restrict_oom_score_adj, because some
# kernels (this project's CI VMs) refuse any negative oom_score_adj even to
# root (EIO), which fails every pod sandbox otherwise.
sed -i -e "s|sandbox_image = .*|sandbox_image = \"$IMAGE_REGISTRY/pause:$PAUSE_VERSION\"|" \
	-e 's|restrict_oom_score_adj = false|restrict_oom_score_adj = true|' "$root/etc/containerd/config.toml"
grep -q "sandbox_image = \"$IMAGE_REGISTRY/pause:$PAUSE_VERSION\"" "$root/etc/containerd/config.toml" ||
	die "could not set sandbox_image in kind's containerd config.toml (its format changed?)"
# The same kernels: systemd fails a unit whose negative OOMScoreAdjust= it
# cannot apply (status 214/OOM_ADJUST); containerd's and journald's have one.
grep -rlE '^OOMScoreAdjust=-' "$root/etc/systemd/system" "$root/lib/systemd/system" 2>/dev/null |
	while read -r unit; do sed -i -E 's/^OOMScoreAdjust=-[0-9]+/OOMScoreAdjust=0/' "$unit"; done

# cri-base.json as kind's Dockerfile makes it: the default OCI spec, with
# kind's product_uuid hook and without rlimits.
chroot "$root" ctr oci spec >"$tmp/spec.json" || die "ctr oci spec (in the node rootfs) failed"
jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' "$tmp/spec.json" |
	jq 'del(.process.rlimits)' >"$root/etc/containerd/cri-base.json" || die "jq on the OCI spec failed (is jq installed on this machine?)"

# The clean-up and unit set-up of kind's base Dockerfile.
find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f -- "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
	"$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
	"$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
ln -sfn /usr/lib/systemd/systemd "$root/sbin/init"
chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
	tandem-import-images.service tandem-cni.service >&2 || die "systemctl enable in the node rootfs failed"
chroot "$root" systemctl mask systemd-binfmt.service >&2
rm -f -- "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
: >"$root/etc/machine-id"

# --- 4. one image --------------------------------------------------------------
log "importing the node image into Docker"
# systemd exits on SIGRTMIN+3 (kind's base image sets the same).
tar --numeric-owner --xattrs -C "$root" -c . | docker_import "$tag" SIGRTMIN+3 \
	--change 'ENV container=docker' \
	--change "$path_env" \
	--change 'ENTRYPOINT ["/kind/bin/tandem-entrypoint.sh", "/usr/local/bin/entrypoint", "/sbin/init"]'
rm -rf -- "$root"
log "saving $tag to $node_image_tar"
docker save -o "$tmp/node.tar" "$tag" || die "docker save $tag failed"
mv -f -- "$tmp/node.tar" "$node_image_tar"
prune_superseded "$node_image_tar"
log "made $tag in $((SECONDS - start))s"
printf '%s\n' "$tag"
