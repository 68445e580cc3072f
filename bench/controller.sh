#!/usr/bin/env bash
# bench/controller.sh: `kiln controller` against the dev cluster (the
# `bench-controller` target; a benchmark, not a test: it always exits 0).
# Prints one machine-readable line per case:
#   controller_chain10: an RGD of 10 ConfigMaps, each reading the previous
#       one, from `kubectl apply` of an instance to Ready (info);
#   controller_<N>_instances: N instances (default 1000) of a 5-ConfigMap RGD,
#       from `kubectl apply` of all of them to all ACTIVE (kubectl's own time
#       included), until the queue's backlog of no-op reconciles is done
#       (settled_s), and the controller's peak RSS (VmHWM);
#       targets: under 30 s and 64 MB;
#   controller_steady: writes, reconciles and CPU time over STEADY_S seconds
#       with every instance Ready; target: no write and no reconcile.
# Env: KILN, DEVCLUSTER (required), KILN_SOURCE_DIR, N, STEADY_S (default 60),
# WORKERS (default 2).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KILN_SOURCE_DIR:-$(cd "$HERE/.." && pwd)}
N=${N:-1000}
STEADY_S=${STEADY_S:-60}
WORKERS=${WORKERS:-2}
TARGET_S=30
TARGET_MB=64
KUBECTL_DIR=$(dirname "$(readlink -f "$(command -v kubectl || echo /usr/bin/kubectl)")")
if [ ! -x "$KUBECTL_DIR/kubectl.1.32" ] || ! command -v curl >/dev/null || ! command -v bc >/dev/null; then
    echo "bench controller error=\"needs kubectl.1.32 beside kubectl, curl and bc\""
    exit 0
fi
. "$SRC/tests/devcluster/lib.sh"
CTL_PID=""
cleanup() {
    [ -n "$CTL_PID" ] && kill -TERM "$CTL_PID" 2>/dev/null && wait "$CTL_PID"
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'trap - EXIT; cleanup; exit 0' TERM INT
fail_line() { # fail_line <name> <message>: a failed case, then stop
    echo "bench $1 error=\"$2\""
    exit 0
}
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

"$KILN" controller --kubeconfig "$KUBECONFIG" --workers "$WORKERS" --log-level warn \
    --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 2>"$WORK/ctl.err" &
CTL_PID=$!
kubectl wait --for=condition=Ready rgd/chain10 rgd/fleet --timeout=30s >/dev/null ||
    fail_line controller "RGDs not Ready in 30 s"

t0=$(date +%s.%N)
printf 'apiVersion: kiln.dev/v1alpha1\nkind: Chain10\nmetadata: {name: c, namespace: default}\nspec: {name: c}\n' |
    kubectl apply -f - >/dev/null
kubectl wait --for=condition=Ready chain10/c --timeout=30s >/dev/null ||
    fail_line controller_chain10 "not Ready in 30 s"
t1=$(date +%s.%N)
printf 'bench controller_chain10 seconds=%.2f info\n' "$(echo "$t1 - $t0" | bc)"

for i in $(seq 1 "$N"); do
    printf -- '---\napiVersion: kiln.dev/v1alpha1\nkind: Fleet\nmetadata: {name: f%d, namespace: default}\nspec: {name: f%d}\n' "$i" "$i"
done >"$WORK/fleet.yaml"
t0=$(date +%s.%N)
kubectl apply -f "$WORK/fleet.yaml" >/dev/null
t_applied=$(date +%s.%N)
deadline=$(($(date +%s) + 300))
while [ "$(kubectl get fleet -o 'jsonpath={range .items[*]}{.status.state}{"\n"}{end}' | grep -c ACTIVE)" -lt "$N" ]; do
    [ "$(date +%s)" -gt "$deadline" ] && fail_line "controller_${N}_instances" "not all ACTIVE after 300 s"
    sleep 0.5
done
t1=$(date +%s.%N)
writes() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^rest_client_requests_total/ && !/method="GET"/ {s += $2} END {print s + 0}'; }
cpu() { awk '{print $14 + $15}' /proc/$CTL_PID/stat; }
reconciles() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^controller_runtime_reconcile_total/ {s += $2} END {print s + 0}'; }
# Settled means the queue's backlog of (no-op) reconciles is done.
prev=-1
while [ "$(reconciles)" != "$prev" ]; do
    prev=$(reconciles)
    sleep 2
done
t_settled=$(date +%s.%N)
# The peak is taken once settled: the backlog allocates too.
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$CTL_PID/status)
secs=$(echo "$t1 - $t0" | bc)
mb=$(echo "scale=1; $rss_kb / 1024" | bc)
verdict=ok
if [ "$(echo "$secs >= $TARGET_S || $mb >= $TARGET_MB" | bc)" = 1 ]; then verdict=miss; fi
printf 'bench controller_%s_instances workers=%s seconds=%.2f kubectl_apply_s=%.2f settled_s=%.2f peak_rss_mb=%s target_s=%s target_mb=%s %s\n' \
    "$N" "$WORKERS" "$secs" "$(echo "$t_applied - $t0" | bc)" "$(echo "$t_settled - $t0" | bc)" \
    "$mb" "$TARGET_S" "$TARGET_MB" "$verdict"

w0=$(writes); c0=$(cpu); r0=$(reconciles)
sleep "$STEADY_S"
w1=$(writes); c1=$(cpu); r1=$(reconciles)
hz=$(getconf CLK_TCK)
verdict=ok
if [ $((w1 - w0)) -ne 0 ] || [ $((r1 - r0)) -ne 0 ]; then verdict=miss; fi
printf 'bench controller_steady instances=%s steady_s=%s writes=%s reconciles=%s cpu_s=%.2f target_writes=0 %s\n' \
    "$N" "$STEADY_S" $((w1 - w0)) $((r1 - r0)) "$(echo "scale=2; ($c1 - $c0) / $hz" | bc)" "$verdict"
exit 0
