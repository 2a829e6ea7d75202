#!/bin/bash
# First step of the node image's ENTRYPOINT, before kind's own
# /usr/local/bin/entrypoint: when the node container was started without
# --privileged (hack/kind/docker-shim, for engines that cannot grant every
# capability), Docker mounted the cgroup v1 hierarchies read-only, and systemd
# and the kubelet need them writable. kind's entrypoint itself makes /sys
# read-only again, as systemd-in-a-container wants.
set -euo pipefail
while read -r _ target fstype opts _; do
	if [[ $fstype == cgroup || $fstype == cgroup2 ]] && [[ ,$opts, == *,ro,* ]]; then
		echo "INFO: remounting $target read-write" >&2
		mount -o remount,bind,rw "$target"
	fi
done </proc/self/mounts
exec "$@"
