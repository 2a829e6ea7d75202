# shellcheck shell=bash
# shellcheck disable=SC2034 # every variable here is used by the scripts that source it
# Every pinned version of tandem's offline kind cluster, in one place.
# Sourced by the other scripts in hack/kind/ (never run on its own).
#
# Bumping Kubernetes: change KUBERNETES_VERSION here, in hack/control-plane.sh,
# and k8s.io/kubernetes plus every k8s.io/X v0.N.M replace in
# hack/control-plane/kubernetes/go.mod (in step with the k8s.io/api in the
# root go.mod); then check `kubeadm config images list` for the image
# versions below (binaries.sh fails if they disagree).

# kind itself: `go install sigs.k8s.io/kind@$KIND_VERSION`; its module's
# images/base/files are copied into the node image.
KIND_VERSION=v0.33.0

# k8s.io/kubernetes, built from hack/control-plane/kubernetes (matches k8s.io/api v0.37.2).
KUBERNETES_VERSION=v1.37.2
# etcd server, built from hack/control-plane/etcd (kubeadm v1.37's default).
ETCD_VERSION=v3.7.0
# Image tag kubeadm v1.37.2 expects for etcd (registry.k8s.io/etcd:<this>).
ETCD_IMAGE_TAG=3.7.0-0
# github.com/coredns/coredns (go install).
COREDNS_VERSION=v1.14.6
# pause: build/pause/linux/pause.c of the kubernetes module, gcc -static.
PAUSE_VERSION=3.10.2
# crictl, for debugging inside a node (kind's nodes ship it): sigs.k8s.io/cri-tools.
CRI_TOOLS_VERSION=v1.37.0

# Debian suite of every rootfs (node, kube-proxy, busybox, postgres); packages
# come from the machine's apt mirror (the first deb.debian.org-like URI of
# /etc/apt/sources.list*, or DEBIAN_MIRROR).
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR_DEFAULT=http://deb.debian.org/debian
POSTGRES_MAJOR=15

# All component images live under this registry name, exactly as kubeadm
# asks for them; no registry is ever contacted.
IMAGE_REGISTRY=registry.k8s.io
# Repository of every image these scripts make in the local Docker engine.
LOCAL_REPO=tandem-local

# Cache: ${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/kind/...
KIND_CACHE=${TANDEM_CACHE:-${XDG_CACHE_HOME:-${HOME:?neither TANDEM_CACHE, XDG_CACHE_HOME nor HOME is set}/.cache}/tandem}/kind
# Binaries (kubelet, kubeadm, ..., etcd, coredns, pause, crictl), keyed by versions.
KIND_BIN_DIR=$KIND_CACHE/bin/k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION#v}-coredns-${COREDNS_VERSION#v}-pause-${PAUSE_VERSION}-crictl-${CRI_TOOLS_VERSION#v}

# Debian packages of each rootfs (versions come from the $DEBIAN_SUITE mirror).
# Node: kind's images/base list (minus nfs-common, open-iscsi, fuse-overlayfs)
# plus Debian's containerd 1.6, runc and CNI plugins, and dbus for systemd's
# cgroup driver.
NODE_PACKAGES=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,e2fsprogs,iputils-ping,containerd,runc,containernetworking-plugins
# kube-proxy's image: its iptables/nft/conntrack tools.
KUBE_PROXY_PACKAGES=iptables,nftables,conntrack,kmod
# Test images (images.sh).
POSTGRES_PACKAGES=postgresql-$POSTGRES_MAJOR
