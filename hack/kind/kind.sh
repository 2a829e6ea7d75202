#!/usr/bin/env bash
# Runs kind $KIND_VERSION (versions.sh; installed into the cache if missing)
# with its arguments, e.g.
#   hack/kind/kind.sh create cluster --name tandem-e2e --image "$(hack/kind/node-image.sh)" --config hack/kind/cluster.yaml
#   hack/kind/kind.sh load docker-image tandem-local/postgres:15-... --name tandem-e2e
#   hack/kind/kind.sh delete cluster --name tandem-e2e
# On an engine whose capability bounding set lacks some capability (ours
# lacks CAP_SYS_RESOURCE, so `docker run --privileged` fails with "unable to
# apply caps: operation not permitted"), kind gets hack/kind/docker-shim
# first on its PATH, which turns --privileged into the equivalent flags
# without the missing capabilities (see the comment there).
# KIND_PRIVILEGED_SHIM=always|never|auto (default auto) overrides the check.
# KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER: containerd's snapshotter in the
# nodes (default: overlayfs when Docker's volumes are on ext4/xfs, else native).
set -euo pipefail
KIND_LOG_PREFIX=kind.sh
# shellcheck source=hack/kind/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

kind=$(kind_bin)
need docker "kind needs a Docker engine"

# Capability names by number (linux/capability.h), 0..40.
cap_names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
	NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE
	SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE
	AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
	CHECKPOINT_RESTORE)

# Capabilities (names) missing from the bounding set of the local engine
# (dockerd's, else this shell's: on one machine they agree).
missing_caps() {
	local pid bnd last i
	pid=$(pidof dockerd 2>/dev/null | cut -d' ' -f1) || pid=
	bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' "/proc/${pid:-self}/status" 2>/dev/null) || bnd=
	[[ -n $bnd ]] || bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
	last=$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null || echo 40)
	((last < ${#cap_names[@]})) || last=$((${#cap_names[@]} - 1))
	for ((i = 0; i <= last; i++)); do
		if ((((0x$bnd >> i) & 1) == 0)); then printf '%s ' "${cap_names[$i]}"; fi
	done
}

# containerd's snapshotter in the nodes. kind's entrypoint picks
# fuse-overlayfs when the node's root is on FUSE (our engine's storage driver
# is fuse-overlayfs), which the node image does not ship. But
# /var/lib/containerd lives on the node's /var volume, on the engine's own
# disk, where the kernel's overlayfs works: use it there, else native.
if [[ -z ${KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER:-} ]]; then
	docker_root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null) || docker_root=/var/lib/docker
	case $(stat -f -c %T "$docker_root/volumes" 2>/dev/null || echo unknown) in
	ext2/ext3 | xfs | tmpfs) KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=overlayfs ;;
	*) KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=native ;;
	esac
fi
export KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER

mode=${KIND_PRIVILEGED_SHIM:-auto}
drop=
case $mode in
always) drop=$(missing_caps) ;;
never) ;;
auto)
	drop=$(missing_caps)
	[[ -n $drop ]] || mode=never
	;;
*) die "KIND_PRIVILEGED_SHIM must be auto, always or never, not $mode" ;;
esac

if [[ $mode == never ]]; then
	exec "$kind" "$@"
fi
[[ ${1:-} != create ]] || log "the Docker engine lacks capabilities ${drop% }; kind's --privileged node containers get every other one instead (docker-shim)"
TANDEM_REAL_DOCKER=$(command -v docker) TANDEM_CAP_DROP=$drop PATH=$KIND_SCRIPT_DIR/docker-shim:$PATH exec "$kind" "$@"
