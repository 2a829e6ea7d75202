#!/bin/bash
# Runs inside a kind node (tandem-import-images.service): imports every image
# tar under /kind/images into containerd, once per node.
set -euo pipefail
for i in $(seq 1 60); do
	ctr --namespace k8s.io version >/dev/null 2>&1 && break
	[[ $i == 60 ]] && { echo "containerd did not come up" >&2; exit 1; }
	sleep 1
done
for tar in /kind/images/*.tar; do
	[[ -e $tar ]] || continue
	echo "importing $tar" >&2
	ctr --namespace k8s.io images import --all-platforms --no-unpack "$tar"
done
mkdir -p /var/lib/tandem
touch /var/lib/tandem/images-imported
