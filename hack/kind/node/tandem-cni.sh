#!/bin/bash
# tandem's pod network for its offline kind cluster: a stand-in for kindnetd,
# which cannot be built offline (its module is not on the Go proxy).
#
# Why this design (issue #8): kindnetd's job on a flat Docker network is
# small: give every node a CNI config for its own podCIDR (allocated by
# kube-controller-manager, --allocate-node-cidrs) and a route to every other
# node's podCIDR via that node's InternalIP. Debian's containernetworking-
# plugins (ptp, host-local, portmap, loopback; in the node image) do the
# per-pod work, and this loop does the rest with kubectl and ip(8), using the
# kubelet's own credentials (plus an RBAC grant to list Nodes, see apply_rbac).
# No image, no DaemonSet, no Go code to build; the nodes turn Ready a few
# seconds after they register. A CNI from the Go proxy (flannel, say) would
# need its own image, a manifest, and its vxlan/host-gw backends, for the
# same result on one Docker bridge. Measured on 2 cores: see hack/kind/README.md.
#
# Each pass (every second until configured; then on every change of a Node,
# seen through a watch, and at least every 30 s):
#   - write /etc/cni/net.d/10-tandem.conflist for this node's podCIDR;
#   - `ip route replace <podCIDR> via <InternalIP>` for every other node;
#   - masquerade traffic from this node's pods to anything outside every
#     node's podCIDR (the Docker host, the API server's node IP, ...).
set -uo pipefail

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
kubeconfig=/etc/kubernetes/kubelet.conf
conf=/etc/cni/net.d/10-tandem.conflist
self=$(cat /etc/hostname 2>/dev/null || hostname)
last_state=

log() { echo "tandem-cni: $*" >&2; }

write_conf() {
	local cidr=$1 tmp
	tmp=$(mktemp /etc/cni/net.d/.tandem.XXXXXX)
	cat >"$tmp" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "tandem",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$cidr"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
	chmod 0644 "$tmp"
	mv -f "$tmp" "$conf"
	log "wrote $conf for $cidr"
}

masquerade() {
	local own=$1
	shift
	iptables -t nat -N TANDEM-MASQ 2>/dev/null || true
	iptables -t nat -F TANDEM-MASQ
	local c
	for c in "$@"; do
		iptables -t nat -A TANDEM-MASQ -d "$c" -j RETURN
	done
	iptables -t nat -A TANDEM-MASQ -j MASQUERADE
	# One jump, for this node's pods only.
	local -a rule
	while read -r -a rule; do
		iptables -t nat -D "${rule[@]:1}" 2>/dev/null || true
	done < <(iptables -t nat -S POSTROUTING | grep -- '-j TANDEM-MASQ' || true)
	iptables -t nat -A POSTROUTING -s "$own" -m comment --comment tandem-pod-masquerade -j TANDEM-MASQ
}

# Since Kubernetes 1.32 the Node authorizer lets a kubelet read only its own
# Node; this grants the group system:nodes (every kubelet) get/list/watch of
# all Nodes through RBAC. Applied by the control-plane node, the only one with
# /etc/kubernetes/admin.conf.
rbac_applied=false
apply_rbac() {
	kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: tandem-cni:node-reader
rules:
  - apiGroups: [""]
    resources: [nodes]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tandem-cni:node-reader
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: tandem-cni:node-reader
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:nodes
YAML
}

# sync: one pass; returns 0 once this node has its podCIDR (and config).
sync() {
	local nodes own name cidr ip
	local -a cidrs=()
	# name podCIDR InternalIP, one node per line
	nodes=$(kubectl --kubeconfig "$kubeconfig" get nodes -o \
		jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' 2>/dev/null) || return 1
	own=
	while read -r name cidr ip; do
		[[ -n $name && -n ${cidr:-} && -n ${ip:-} ]] || continue
		cidrs+=("$cidr")
		if [[ $name == "$self" ]]; then
			own=$cidr
		fi
	done <<<"$nodes"
	[[ -n $own ]] || return 1
	if [[ $nodes != "$last_state" || ! -s $conf ]]; then
		grep -q "\"$own\"" "$conf" 2>/dev/null || write_conf "$own"
		while read -r name cidr ip; do
			[[ -n $name && -n ${cidr:-} && -n ${ip:-} && $name != "$self" ]] || continue
			ip route replace "$cidr" via "$ip" && log "route $cidr via $ip ($name)"
		done <<<"$nodes"
		masquerade "$own" "${cidrs[@]}" && last_state=$nodes
	fi
	return 0
}

mkdir -p /etc/cni/net.d
while :; do
	if ! $rbac_applied && [[ -s /etc/kubernetes/admin.conf ]] && apply_rbac; then
		log "granted system:nodes read access to all Nodes"
		rbac_applied=true
	fi
	if [[ -s $kubeconfig ]]; then
		# Watch first, then sync: a Node change after the sync ends the wait
		# at once (new nodes get their routes within a second or so), and
		# 30 s is the longest a missed change can go unnoticed.
		exec 3< <(exec kubectl --kubeconfig "$kubeconfig" get nodes --watch-only -o name 2>/dev/null)
		watch_pid=$!
		if sync; then
			read -r -t 30 _ <&3 || true
		fi
		kill "$watch_pid" 2>/dev/null || true
		exec 3<&-
	fi
	sleep 1
done
