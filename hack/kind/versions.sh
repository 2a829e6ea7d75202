# shellcheck shell=bash
# shellcheck disable=SC2034 # every variable here is used by the scripts that source it
# The offline kind node's package lists, image names and cache layout. The versions are in hack/versions.sh.
# Sourced by hack/kind/lib.sh (never run on its own).
# shellcheck source=hack/versions.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../versions.sh"

# Packages come from the machine's apt mirror (the first deb.debian.org-like URI of /etc/apt/sources.list*, or
# DEBIAN_MIRROR).
DEBIAN_MIRROR_DEFAULT=http://deb.debian.org/debian

# All component images live under this registry name, exactly as kubeadm
# asks for them; no registry is ever contacted.
IMAGE_REGISTRY=registry.k8s.io
# Repository of every image these scripts make in the local Docker engine.
LOCAL_REPO=tandem-local

# Cache: $TANDEM_CACHE_DIR/kind/...
KIND_CACHE=$TANDEM_CACHE_DIR/kind
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
