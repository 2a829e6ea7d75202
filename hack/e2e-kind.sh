#!/usr/bin/env bash
# The end-to-end suite on kind, where pods really run: `make e2e-kind` runs this.
#
#   1. makes (or finds, cached) every image, with no registry: the kind node image (hack/kind/node-image.sh),
#      busybox and PostgreSQL from Debian's packages (hack/kind/images.sh), tandem's webhook and backup images
#      from the project's Dockerfile (hack/image.sh), and an S3-compatible store (versitygw, built from the Go
#      module proxy by hack/tools.sh);
#   2. creates the cluster $KIND_CLUSTER_NAME (default tandem-e2e: one control plane, two workers,
#      hack/kind/cluster.yaml) and loads the images;
#   3. installs the store, and tandem with its Helm chart (tls.mode=helm: cert-manager's controllers cannot be
#      built here; the hosted workflow, .github/workflows/e2e-kind.yaml, installs cert-manager and uses the
#      default mode), with e2e/testdata/config.yaml as its configuration;
#   4. runs the e2e suite against it (E2E_KUBECONFIG), the cluster-only checks included; E2E_RUN, when set, is
#      go test's -run filter (E2E_RUN=TestClusterSidecarVerifiesEachBackup make e2e-kind runs that test alone);
#   5. on failure prints where to look; deletes the cluster, also on Ctrl-C, unless KEEP_CLUSTER=1.
#
# With E2E_KIND_PUBLIC=1 (the hosted workflow) the images come from public registries instead: kind's own node
# image, `docker build` with the Dockerfile's public bases, and the busybox and postgres images of Docker Hub;
# cert-manager is installed from its release manifest (CERT_MANAGER_VERSION) and tandem uses it.
#
# Needs: bash, Go, a Docker engine, root for the first image builds (debootstrap, apt-get). Versions are
# pinned in hack/versions.sh.
set -euo pipefail
KIND_LOG_PREFIX=e2e-kind
# shellcheck source=hack/kind/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/kind/lib.sh"

root=$KIND_REPO_ROOT
cluster=${KIND_CLUSTER_NAME:-tandem-e2e}
kubeconfig=${KIND_KUBECONFIG:-$KIND_CACHE/kubeconfig-$cluster}
public=${E2E_KIND_PUBLIC:-0}
kind_sh=$KIND_SCRIPT_DIR/kind.sh
tandem_ns=tandem-system
store_ns=tandem-store
bucket=backups
store_access=tandem-e2e
store_secret=tandem-e2e-secret
t0=$SECONDS
step_start=$SECONDS
step() {
	log "$1 (previous step: $((SECONDS - step_start))s)"
	step_start=$SECONDS
}

# --static: what can be checked without a Docker engine (the chart's objects are checked against a real API
# server by the e2e suite's TestChartIsAcceptedByTheAPIServer, which make e2e runs everywhere).
if [[ ${1:-} == --static ]]; then
	mapfile -t scripts < <(cd "$root" && git ls-files '*.sh' 'hack/kind/docker-shim/*')
	for f in "${scripts[@]}"; do bash -n "$root/$f" || die "bash -n $f failed"; done
	command -v shellcheck >/dev/null || apt_install shellcheck
	(cd "$root" && shellcheck -x --severity=warning "${scripts[@]}") || die "shellcheck found problems"
	(cd "$KIND_SCRIPT_DIR/configcheck" && GOWORK=off go run . ../cluster.yaml) || die "hack/kind/cluster.yaml is not a valid kind configuration"
	log "static checks passed: bash -n and shellcheck of ${#scripts[@]} scripts, hack/kind/cluster.yaml against kind's types"
	exit 0
fi

need docker "a Docker engine is needed (make test skips this when none answers)"
docker info >/dev/null 2>&1 || die "no Docker engine answers"
helm=$("$root/hack/tools.sh" helm)
version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo devel)

# --- 1. images ----------------------------------------------------------------------------------------------
step "images"
if [[ $public == 1 ]]; then
	node_image=${KIND_NODE_IMAGE:-$KIND_PUBLIC_NODE_IMAGE}
	busybox=docker.io/library/busybox:1.37
	postgres=docker.io/library/postgres:17
	docker pull -q "$busybox" >&2 && docker pull -q "$postgres" >&2
	postgres_user=999:999
	tandem_image=tandem:e2e
	backup_image=tandem-backup:e2e
	docker build -q --build-arg VERSION="$version" -t "$tandem_image" "$root" >&2
	docker build -q --build-arg VERSION="$version" --target backup -t "$backup_image" "$root" >&2
	store_base=gcr.io/distroless/static-debian12:nonroot
	docker pull -q "$store_base" >&2
else
	node_image=$("$KIND_SCRIPT_DIR/node-image.sh")
	busybox=$("$KIND_SCRIPT_DIR/images.sh" busybox)
	postgres=$("$KIND_SCRIPT_DIR/images.sh" postgres)
	postgres_user=$(docker image inspect -f '{{.Config.User}}' "$postgres")
	tandem_image=$("$root/hack/image.sh" tandem-local/tandem:e2e)
	backup_image=$("$root/hack/image.sh" --backup tandem-local/tandem-backup:e2e)
	store_base=tandem-local/static:nonroot # made by hack/image.sh
fi
[[ $postgres_user =~ ^[0-9]+:[0-9]+$ ]] || die "the postgres image's user is '$postgres_user', want uid:gid"

# The store: versitygw (posix backend) on the non-root base, with the bucket as a directory it owns.
versitygw=$("$root/hack/tools.sh" versitygw)
store_image=tandem-local/versitygw:$(basename "$(dirname "$versitygw")" | sed 's/^versitygw-//')-$(sha256sum "$versitygw" | cut -c1-12)
if ! docker image inspect "$store_image" >/dev/null 2>&1; then
	log "making $store_image"
	work=$(mktemp -d)
	mkdir -p "$work/root/data/$bucket"
	cp "$versitygw" "$work/root/versitygw"
	cat >"$work/Dockerfile" <<EOF
FROM $store_base
COPY --chown=65532:65532 root/ /
USER 65532:65532
ENTRYPOINT ["/versitygw"]
EOF
	DOCKER_BUILDKIT=0 docker build -q -t "$store_image" "$work" >/dev/null || die "building $store_image failed"
	rm -rf "$work"
fi

# --- 2. the cluster -----------------------------------------------------------------------------------------
bin_dir=$("$KIND_SCRIPT_DIR/binaries.sh")
kubectl=("$bin_dir/kubectl" --kubeconfig "$kubeconfig")
created=false
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((rc != 0)) && $created; then
		log "FAILED (exit $rc) after $((SECONDS - t0))s. Where to look:"
		log "  ${kubectl[*]} get pods -A -o wide"
		log "  ${kubectl[*]} -n $tandem_ns logs deploy/tandem            # tandem's log"
		log "  ${kubectl[*]} -n <e2e-namespace> describe pods             # events of the suite's pods"
		log "  ${kubectl[*]} -n <e2e-namespace> logs <pod> -c tandem-backup   # a backup sidecar's log"
		if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then log "  (run with KEEP_CLUSTER=1 to keep the cluster for that)"; fi
		"${kubectl[@]}" get pods -A -o wide >&2 2>/dev/null || true
		"${kubectl[@]}" -n "$tandem_ns" logs deploy/tandem --tail=50 >&2 2>/dev/null || true
	fi
	if $created; then kind_release_cluster "$cluster" "$kubeconfig"; fi
	((rc != 0)) || log "passed in $((SECONDS - t0))s"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "creating cluster $cluster from $node_image"
created=true
kind_create_cluster "$cluster" "$node_image" "$kubeconfig"

step "loading the images"
for image in "$busybox" "$postgres" "$tandem_image" "$backup_image" "$store_image"; do
	"$kind_sh" load docker-image "$image" --name "$cluster" >&2
done

# --- 3. the store and tandem --------------------------------------------------------------------------------
step "installing the object store"
"${kubectl[@]}" apply -f - >&2 <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $store_ns}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: s3, namespace: $store_ns}
spec:
  selector: {matchLabels: {app: s3}}
  template:
    metadata: {labels: {app: s3}}
    spec:
      containers:
        - name: versitygw
          image: $store_image
          imagePullPolicy: Never
          args: [--access, $store_access, --secret, $store_secret, --port, ":7070", posix, /data]
          ports: [{containerPort: 7070}]
          readinessProbe: {tcpSocket: {port: 7070}, periodSeconds: 2}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}
---
apiVersion: v1
kind: Service
metadata: {name: s3, namespace: $store_ns}
spec:
  selector: {app: s3}
  ports: [{port: 7070}]
EOF

step "installing tandem with its chart"
values=$(mktemp)
{
	echo "config:"
	sed 's/^/  /' "$root/e2e/testdata/config.yaml"
} >"$values"
chart_args=(
	--namespace "$tandem_ns" --create-namespace --wait --timeout 5m
	--set "image.repository=${tandem_image%:*}" --set "image.tag=${tandem_image##*:}" --set image.pullPolicy=Never
	--set "backupImage.repository=${backup_image%:*}" --set "backupImage.tag=${backup_image##*:}"
	-f "$values"
)
if [[ $public == 1 ]]; then
	cm_version=$CERT_MANAGER_VERSION
	"${kubectl[@]}" apply -f "https://github.com/cert-manager/cert-manager/releases/download/$cm_version/cert-manager.yaml" >&2
	"${kubectl[@]}" -n cert-manager wait --for=condition=Available deploy --all --timeout=5m >&2
else
	chart_args+=(--set tls.mode=helm)
fi
KUBECONFIG=$kubeconfig "$helm" upgrade --install tandem "$root/charts/tandem" "${chart_args[@]}" >&2
rm -f "$values"
step "helm test: the webhook answers through its Service with the CA the API server trusts"
# helm's --wait returns when the pods are Ready; the Service's endpoints and every node's rules for them follow
# a moment later, so wait for those before asking.
"${kubectl[@]}" -n "$tandem_ns" rollout status deploy/tandem --timeout 3m >&2
for i in $(seq 1 60); do
	ready=$("${kubectl[@]}" -n "$tandem_ns" get endpointslices -l kubernetes.io/service-name=tandem \
		-o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready}{"\n"}{end}' | grep -c true) || ready=0
	((ready >= 1)) && break
	((i < 60)) || die "tandem's Service has no ready endpoints after 60 s"
	sleep 1
done
sleep 3
# (No --logs: the chart deletes a test pod that succeeded, before helm could read its log.)
if ! KUBECONFIG=$kubeconfig "$helm" test tandem --namespace "$tandem_ns" --timeout 3m >&2; then
	"${kubectl[@]}" -n "$tandem_ns" logs tandem-test >&2 || true
	die "helm test failed: tandem does not answer through its Service (the probe's log is above)"
fi
"${kubectl[@]}" -n "$store_ns" wait --for=condition=Available deploy/s3 --timeout=3m >&2

# --- 4. the suite -------------------------------------------------------------------------------------------
step "running the e2e suite"
(
	cd "$root"
	E2E_KUBECONFIG=$kubeconfig E2E_TANDEM_CONFIG=$root/e2e/testdata/config.yaml \
		E2E_POSTGRES_IMAGE=$postgres E2E_POSTGRES_USER=$postgres_user E2E_BUSYBOX_IMAGE=$busybox \
		E2E_S3_ENDPOINT=http://s3.$store_ns.svc.cluster.local:7070 E2E_S3_BUCKET=$bucket \
		E2E_S3_ACCESS_KEY=$store_access E2E_S3_SECRET_KEY=$store_secret E2E_TANDEM_NAMESPACE=$tandem_ns \
		go test ./e2e/ -count=1 -v -timeout 30m ${E2E_RUN:+-run "$E2E_RUN"}
) >&2
