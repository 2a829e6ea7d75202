#!/usr/bin/env bash
# Smoke check of tandem's offline kind cluster:
#   1. makes (or finds) the node image and a busybox image;
#   2. creates the cluster $KIND_CLUSTER_NAME (default tandem-e2e) from
#      cluster.yaml (one control plane, two workers), replacing one of that
#      name, and waits for every node to be Ready;
#   3. loads the busybox image and runs one pod on each worker
#      (imagePullPolicy: Never): an HTTP server behind a Service, and a client;
#   4. checks pod-to-pod across the workers, a Service by its DNS name
#      (CoreDNS + kube-proxy), and a Service by its ClusterIP;
#   5. deletes the cluster, also on failure or Ctrl-C, unless KEEP_CLUSTER=1.
# The kubeconfig is written to $KIND_KUBECONFIG (default
# $KIND_CACHE/kubeconfig-<cluster>; printed at the end), kubectl is the one
# binaries.sh built. Timings of each step go to stderr.
set -euo pipefail
KIND_LOG_PREFIX=kind-smoke
# shellcheck source=hack/kind/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

cluster=${KIND_CLUSTER_NAME:-tandem-e2e}
kubeconfig=${KIND_KUBECONFIG:-$KIND_CACHE/kubeconfig-$cluster}
kind_sh=$KIND_SCRIPT_DIR/kind.sh
t0=$SECONDS
step_start=$SECONDS
step() {
	log "$1 (previous step: $((SECONDS - step_start))s)"
	step_start=$SECONDS
}

step "node image"
node_image=$("$KIND_SCRIPT_DIR/node-image.sh")
step "busybox image"
busybox=$("$KIND_SCRIPT_DIR/images.sh" busybox)
bin_dir=$("$KIND_SCRIPT_DIR/binaries.sh")
kubectl=("$bin_dir/kubectl" --kubeconfig "$kubeconfig")

created=false
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if $created; then kind_release_cluster "$cluster" "$kubeconfig"; fi
	if ((rc == 0)); then
		log "smoke check passed in $((SECONDS - t0))s"
	else
		log "smoke check FAILED (exit $rc) after $((SECONDS - t0))s"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "creating cluster $cluster from $node_image, waiting for its nodes to be Ready"
created=true
kind_create_cluster "$cluster" "$node_image" "$kubeconfig" --retain
"${kubectl[@]}" get nodes -o wide >&2

step "loading $busybox"
"$kind_sh" load docker-image "$busybox" --name "$cluster" >&2

step "running a pod on each worker"
"${kubectl[@]}" apply -f - >&2 <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: smoke
---
apiVersion: v1
kind: Pod
metadata:
  name: server
  namespace: smoke
  labels: {app: server}
spec:
  nodeName: $cluster-worker
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: $busybox
      imagePullPolicy: Never
      command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
      ports: [{containerPort: 8080}]
      readinessProbe:
        tcpSocket: {port: 8080}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: server
  namespace: smoke
spec:
  selector: {app: server}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: smoke
spec:
  nodeName: $cluster-worker2
  terminationGracePeriodSeconds: 1
  containers:
    - name: sh
      image: $busybox
      imagePullPolicy: Never
      command: [sleep, '3600']
EOF
"${kubectl[@]}" -n smoke wait --for=condition=Ready pod/server pod/client --timeout=180s >&2 || {
	"${kubectl[@]}" -n smoke describe pods >&2 || true
	die "the smoke pods did not become Ready"
}
"${kubectl[@]}" -n smoke get pods -o wide >&2

# retry N CMD...: run CMD until it succeeds, at most N times, a second apart.
retry() {
	local n=$1 i
	shift
	for ((i = 1; i <= n; i++)); do
		"$@" && return 0
		sleep 1
	done
	return 1
}
in_client() { "${kubectl[@]}" -n smoke exec client -- "$@"; }
expect_server() {
	local out
	# (Debian's busybox-static wget segfaults with -T; hence timeout.)
	out=$(in_client timeout 5 wget -q -O - "$1" 2>&1) || {
		log "  wget $1: $out"
		return 1
	}
	[[ $out == server ]] || {
		log "  wget $1 answered '$out', not 'server'"
		return 1
	}
}

server_ip=$("${kubectl[@]}" -n smoke get pod server -o jsonpath='{.status.podIP}')
cluster_ip=$("${kubectl[@]}" -n smoke get service server -o jsonpath='{.spec.clusterIP}')
step "pod to pod across workers: client -> $server_ip:8080"
retry 10 expect_server "http://$server_ip:8080/" || die "the client pod on $cluster-worker2 cannot reach the server pod on $cluster-worker"
step "Service by ClusterIP: client -> $cluster_ip:80"
retry 10 expect_server "http://$cluster_ip/" || die "the Service's ClusterIP does not answer (kube-proxy)"
step "Service by DNS name: client -> server.smoke.svc.cluster.local"
retry 30 in_client nslookup server.smoke.svc.cluster.local >&2 || die "CoreDNS does not resolve server.smoke.svc.cluster.local"
retry 10 expect_server "http://server.smoke.svc.cluster.local/" || die "the Service does not answer by its DNS name"
retry 10 expect_server "http://server.smoke/" || die "the Service does not answer by its short DNS name (search path)"
log "all checks passed; kubeconfig: $kubeconfig"
