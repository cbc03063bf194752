#!/usr/bin/env bash
# Hand-run smoke test of kubefence-lab-cluster (about 30 s once built): `up` in a temporary
# directory, then namespace -> default ServiceAccount, a schedulable lab node, a Deployment of 2
# -> ReplicaSet -> 2 pods bound to the node, server-side dry run, RBAC `auth can-i`; then SIGTERM
# and a check that `up` exited 0 and left no process. Usage: lab/cluster/smoke.sh
set -euo pipefail
bin=$("$(dirname "$0")/../../scripts/build-lab-cluster.sh")
dir=$(mktemp -d)
"$bin" up --dir "$dir" >"$dir/up.out" 2>"$dir/up.err" &
up=$!
trap 'kill -TERM $up 2>/dev/null || true; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 120); do [ -s "$dir/up.out" ] && break; kill -0 $up || { cat "$dir/up.err"; exit 1; }; sleep 0.5; done
echo "up: $(cat "$dir/up.out")"
k() { "$(dirname "$bin")/kubectl" --kubeconfig "$dir/admin.kubeconfig" "$@"; }
# check WHAT CONDITION: passes once the shell CONDITION holds (tried for up to 30 s), else fails.
check() {
  for _ in $(seq 60); do eval "$2" >/dev/null 2>&1 && { echo "ok: $1"; return; }; sleep 0.5; done
  echo "FAIL: $1 ($2)" >&2; exit 1
}

check "kubectl get ns" 'k get ns default'
k create ns smoke >/dev/null
check "namespace smoke got its default ServiceAccount" 'k -n smoke get sa default'

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata: {name: lab-node-1, labels: {kubernetes.io/hostname: lab-node-1}}
spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}
EOF
res='{"cpu":"4","memory":"8Gi","pods":"110"}'
k patch node lab-node-1 --subresource=status --type=merge -p "{\"status\":{\"capacity\":$res,\"allocatable\":$res,
  \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"lab\",
  \"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
check "node lab-node-1 Ready" \
  '[ "$(k get node lab-node-1 -o jsonpath="{.status.conditions[?(@.type==\"Ready\")].status}")" = True ]'

cat >"$dir/web.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: pause, image: pause}]}
EOF
check "apply --dry-run=server" 'k apply --dry-run=server -f "$dir/web.yaml" | grep -q "server dry run"'
check "the dry run created nothing" '! k -n smoke get deploy web'
k apply -f "$dir/web.yaml" >/dev/null
check "ReplicaSet created" '[ "$(k -n smoke get rs -o name | wc -l)" = 1 ]'
check "2 pods bound to lab-node-1" \
  '[ "$(k -n smoke get pods -o jsonpath="{range .items[*]}{.spec.nodeName} {end}" | grep -o lab-node-1 | wc -l)" = 2 ]'
check "can-i: a service account may not list pods" \
  '[ "$(k auth can-i --as=system:serviceaccount:kube-system:foo list pods)" = no ]'
check "can-i: admin may list pods" '[ "$(k auth can-i list pods)" = yes ]'

trap - EXIT
kill -TERM $up
code=0; wait $up || code=$?
check "up exited 0 on SIGTERM" '[ $code = 0 ]'
check "no process left" '! pgrep -f -- "--data-dir $dir/etcd"'
rm -rf "$dir"
echo "smoke: all passed"
