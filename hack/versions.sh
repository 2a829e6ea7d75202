# shellcheck shell=bash
# shellcheck disable=SC2034 # every variable here is used by the scripts that source it
# Every version tandem's development machinery pins, in one place, and the cache they are kept in. Sourced by the
# scripts in hack/ (never run on its own). The Go modules pin the same versions where Go needs them
# (k8s.io/kubernetes and go.etcd.io/etcd in hack/control-plane/{kubernetes,etcd}/go.mod, k8s.io/api and friends
# in go.mod); hack/verify-pins.sh, part of `make lint`, fails when they disagree with this file.
#
# Bumping Kubernetes: change KUBERNETES_VERSION here, k8s.io/kubernetes and every k8s.io/X replace in
# hack/control-plane/kubernetes/go.mod, k8s.io/api and friends in go.mod; then check `kubeadm config images list`
# against the kind node's image versions below (hack/kind/binaries.sh fails when they disagree).

# --- Kubernetes: the envtest control plane and the kind node -------------------------------------------------
KUBERNETES_VERSION=v1.37.2 # k8s.io/kubernetes; matches k8s.io/api v0.37.2
ETCD_VERSION=v3.7.0        # go.etcd.io/etcd/server/v3; kubeadm v1.37's default etcd

# --- Tools built from the Go module proxy (hack/tools.sh) -----------------------------------------------------
HELM_VERSION=v3.22.0         # helm.sh/helm/v3
HELM_DOCS_VERSION=v1.14.2    # github.com/norwoodj/helm-docs: charts/tandem/README.md from values.yaml
KIND_VERSION=v0.33.0         # sigs.k8s.io/kind; its images/base/files also go into the offline node image
VERSITYGW_VERSION=v1.8.0     # github.com/versity/versitygw: the S3-compatible store of the tests
CERT_MANAGER_VERSION=v1.21.2 # github.com/cert-manager/cert-manager: its CRDs (envtest), its release (public kind)

# --- The kind suite with public images (E2E_KIND_PUBLIC=1 hack/e2e-kind.sh) ------------------------------------
# kind v0.33.0's default node image (sigs.k8s.io/kind pkg/apis/config/defaults).
KIND_PUBLIC_NODE_IMAGE=kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5

# --- The offline kind node (hack/kind) -------------------------------------------------------------------------
ETCD_IMAGE_TAG=3.7.0-0      # registry.k8s.io/etcd:<this>, as kubeadm v1.37.2 asks for it
COREDNS_VERSION=v1.14.6     # github.com/coredns/coredns (go install)
PAUSE_VERSION=3.10.2        # build/pause/linux/pause.c of the kubernetes module, gcc -static
CRI_TOOLS_VERSION=v1.37.0   # sigs.k8s.io/cri-tools: crictl, for debugging inside a node
DEBIAN_SUITE=bookworm       # every rootfs of the kind node and its test images
POSTGRES_MAJOR=15           # the kind suite's PostgreSQL image (Debian's postgresql-15)

# --- Images made from the Dockerfile (hack/image.sh) ------------------------------------------------------------
BACKUP_DEBIAN_SUITE=trixie # the backup image's local base; keep in step with BACKUP_BASE_IMAGE in the Dockerfile

# --- Where everything is cached: outside the clone, so a fresh clone (CI's) reuses what an earlier run built ---
TANDEM_CACHE_DIR=${TANDEM_CACHE:-${XDG_CACHE_HOME:-${HOME:?neither TANDEM_CACHE, XDG_CACHE_HOME nor HOME is set}/.cache}/tandem}
