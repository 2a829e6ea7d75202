# shellcheck shell=bash
# Builds Kubernetes and etcd binaries from the Go module proxy through tandem's pinned wrapper modules
# (hack/control-plane/kubernetes and hack/control-plane/etcd). Sourced by hack/control-plane.sh (the envtest
# control plane) and hack/kind/binaries.sh (the kind node image); the caller defines log and die.

# kube_build MODULE_DIR VERSION OUT_DIR BINARY...: go build k8s.io/kubernetes/cmd/BINARY... into OUT_DIR, stamped
# with VERSION like Kubernetes' hack/lib/version.sh does, so they do not report v0.0.0-master. The build date is
# the module's release time, which keeps the binaries reproducible.
kube_build() {
	local module_dir=$1 version=$2 out_dir=$3
	shift 3
	local major minor build_date pkg b
	minor=${version#v*.}
	minor=${minor%%.*}
	major=${version#v}
	major=${major%%.*}
	build_date=$(cd -- "$module_dir" &&
		GOWORK=off go list -mod=readonly -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes 2>/dev/null) || build_date=
	[[ -n $build_date ]] || build_date=1970-01-01T00:00:00Z
	local ldflags=(-s -w) pkgs=()
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=("-X=$pkg.gitVersion=$version" "-X=$pkg.gitMajor=$major" "-X=$pkg.gitMinor=$minor"
			"-X=$pkg.gitTreeState=clean" "-X=$pkg.buildDate=$build_date")
	done
	for b in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	(cd -- "$module_dir" && GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
		-tags selinux,notest,grpcnotrace -ldflags "${ldflags[*]}" -o "$out_dir/" "${pkgs[@]}") >&2 ||
		die "building $* (k8s.io/kubernetes $version) failed; see the go output above"
	for b in "$@"; do
		[[ -x $out_dir/$b ]] || die "go build reported success but produced no $b"
	done
}

# etcd_build MODULE_DIR OUT_DIR: the etcd server of the wrapper module (a main calling etcdmain.Main).
etcd_build() {
	(cd -- "$1" && GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false -ldflags "-s -w" -o "$2/etcd" .) >&2 ||
		die "building etcd ($1) failed; see the go output above"
	[[ -x $2/etcd ]] || die "go build reported success but produced no etcd"
}

# require_pin MODULE_DIR MODULE VERSION: dies unless the wrapper module's go.mod requires MODULE at VERSION, so
# that a cache keyed by VERSION never holds binaries of another.
require_pin() {
	local re=${2//./\\.}
	grep -Eq "^[[:space:]]*(require[[:space:]]+)?${re} ${3}([[:space:]]*//.*)?\$" "$1/go.mod" ||
		die "$1/go.mod does not require $2 $3; keep the two in step"
}

# missing_in DIR BINARY...: prints, one per line, the binaries that are not executable in DIR.
missing_in() {
	local dir=$1 b
	shift
	for b in "$@"; do
		[[ -x $dir/$b ]] || printf '%s\n' "$b"
	done
}
