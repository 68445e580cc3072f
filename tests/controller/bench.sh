#!/usr/bin/env bash
# tests/controller/bench.sh: controller timings against the dev cluster (not a
# CTest test; numbers for docs and reports). Prints one JSON line per case.
#   chain10: an RGD of 10 ConfigMaps, each reading the previous one, from
#            `kubectl apply` of an instance to Ready;
#   fleet:   N instances (default 1000) of a 5-ConfigMap RGD from cold start
#            to all Ready, the controller's peak RSS, and the writes and CPU
#            time over a steady period with every instance Ready.
# Env: KILN, DEVCLUSTER, KILN_SOURCE_DIR, N (instances), STEADY_S (default 60).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KILN_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
. "$SRC/tests/devcluster/lib.sh"
N=${N:-1000}
STEADY_S=${STEADY_S:-60}
CTL_PID=""
cleanup() {
    [ -n "$CTL_PID" ] && kill -TERM "$CTL_PID" 2>/dev/null && wait "$CTL_PID"
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_server --no-kubelet
kubectl apply -f "$SRC/crds/resourcegraphdefinitions.kiln.dev.yaml" >/dev/null

rgd() { # rgd <name> <kind> <count>: a chain of count ConfigMaps
    printf 'apiVersion: kiln.dev/v1alpha1\nkind: ResourceGraphDefinition\nmetadata: {name: %s}\nspec:\n  schema:\n    apiVersion: v1alpha1\n    kind: %s\n    spec: {name: string | required=true}\n  resources:\n' "$1" "$2"
    for i in $(seq 1 "$3"); do
        if [ "$i" = 1 ]; then v='${schema.spec.name}'; else v="\${c$((i - 1)).data.v}"; fi
        printf '    - id: c%d\n      template:\n        apiVersion: v1\n        kind: ConfigMap\n        metadata: {name: "${schema.spec.name}-%d"}\n        data: {v: "%s"}\n' "$i" "$i" "$v"
    done
}
rgd chain10 Chain10 10 | kubectl apply -f - >/dev/null
rgd fleet Fleet 5 | kubectl apply -f - >/dev/null

"$KILN" controller --kubeconfig "$KUBECONFIG" --workers 2 --log-level warn \
    --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 2>"$WORK/ctl.err" &
CTL_PID=$!
kubectl wait --for=condition=Ready rgd/chain10 rgd/fleet --timeout=30s >/dev/null

t0=$(date +%s.%N)
printf 'apiVersion: kiln.dev/v1alpha1\nkind: Chain10\nmetadata: {name: c, namespace: default}\nspec: {name: c}\n' |
    kubectl apply -f - >/dev/null
kubectl wait --for=condition=Ready chain10/c --timeout=30s >/dev/null
t1=$(date +%s.%N)
echo "{\"case\":\"chain10\",\"apply_to_ready_s\":$(echo "$t1 - $t0" | bc)}"

for i in $(seq 1 "$N"); do
    printf -- '---\napiVersion: kiln.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f%d, namespace: default}\nspec: {name: f%d}\n' "$i" "$i"
done >"$WORK/fleet.yaml"
t0=$(date +%s.%N)
kubectl apply -f "$WORK/fleet.yaml" >/dev/null
t_applied=$(date +%s.%N)
while [ "$(kubectl get fleet -o 'jsonpath={range .items[*]}{.status.state}{"\n"}{end}' | grep -c ACTIVE)" -lt "$N" ]; do
    sleep 0.5
done
t1=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$CTL_PID/status)
writes() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^rest_client_requests_total/ && !/method="GET"/ {s += $2} END {print s + 0}'; }
cpu() { awk '{print $14 + $15}' /proc/$CTL_PID/stat; }
reconciles() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^controller_runtime_reconcile_total/ {s += $2} END {print s + 0}'; }
# Steady means the queue's backlog of (no-op) reconciles is done.
prev=-1
while [ "$(reconciles)" != "$prev" ]; do
    prev=$(reconciles)
    sleep 2
done
t_settled=$(date +%s.%N)
w0=$(writes); c0=$(cpu); r0=$(reconciles)
sleep "$STEADY_S"
w1=$(writes); c1=$(cpu); r1=$(reconciles)
hz=$(getconf CLK_TCK)
echo "{\"case\":\"fleet\",\"instances\":$N,\"kubectl_apply_s\":$(echo "$t_applied - $t0" | bc),\"apply_to_all_ready_s\":$(echo "$t1 - $t0" | bc),\"settled_s\":$(echo "$t_settled - $t0" | bc),\"peak_rss_kb\":$rss,\"steady_s\":$STEADY_S,\"steady_writes\":$((w1 - w0)),\"steady_reconciles\":$((r1 - r0)),\"steady_cpu_s\":$(echo "scale=2; ($c1 - $c0) / $hz" | bc)}"
