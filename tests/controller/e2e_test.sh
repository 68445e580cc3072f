#!/usr/bin/env bash
# tests/controller/e2e_test.sh: `kiln controller` against the dev cluster,
# driven with kubectl the way a user would.
# Env: KILN (the kiln binary), DEVCLUSTER (kiln-devcluster), KILN_SOURCE_DIR.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KILN_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
FIX="$HERE/fixtures"
# shellcheck source=../devcluster/lib.sh
. "$SRC/tests/devcluster/lib.sh"
CTL_PID=""
METRICS_PORT=""

stop_controller() {
    if [ -n "$CTL_PID" ]; then
        kill -TERM "$CTL_PID" 2>/dev/null
        local rc=0
        wait "$CTL_PID" || rc=$?
        if [ "$rc" != 0 ]; then
            fail "controller exited with status $rc after SIGTERM"
            tail -30 "$WORK/ctl.err" >&2
        else
            echo "ok: controller exits 0 on SIGTERM"
        fi
        CTL_PID=""
    fi
}
cleanup() {
    stop_controller
    stop_server
    if [ "$FAILS" -ne 0 ]; then
        echo "--- controller log (last 40 lines)" >&2
        tail -40 "$WORK/ctl.err" >&2
    fi
    [ -n "${KILN_TEST_LOG:-}" ] && cp "$WORK/ctl.err" "$KILN_TEST_LOG"
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_controller() {
    METRICS_PORT=$(free_port)
    "$KILN" controller --kubeconfig "$KUBECONFIG" --workers 2 --log-format json \
        --log-level "${CTL_LOG_LEVEL:-info}" --metrics-bind-address "127.0.0.1:$METRICS_PORT" \
        --health-probe-bind-address 0 "$@" 2>>"$WORK/ctl.err" &
    CTL_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    fail "controller did not become ready"
    tail -20 "$WORK/ctl.err" >&2
    exit 1
}

count_children() { kubectl get cm -n apps -l "kiln.dev/instance-name=$1" -o name | wc -l; }
inventory_mentions() {
    kubectl get testapp "$1" -n apps -o 'jsonpath={.metadata.annotations.kiln\.dev/inventory}' | grep -c "$2"
}
instance_successes() {
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk '/^controller_runtime_reconcile_total\{controller="instance",result="success"/ {print $2}'
}

k() { kubectl "$@"; }
jp() { kubectl get "$1" -n apps "$2" -o "jsonpath=$3" 2>/dev/null; }
writes() {
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk '/^rest_client_requests_total/ && !/method="GET"/ {s += $2} END {print s + 0}'
}
absent() { ! kubectl get "$@" >/dev/null 2>&1; }
child_gone() { absent "$@" -n apps; }

start_server
echo "== test_install_crds"
start_controller --install-crds
if poll_eq 10 "True" kubectl get crd resourcegraphdefinitions.kiln.dev \
    -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}'; then
    echo "ok: --install-crds installs kiln's RGD CRD before the controller starts"
else
    fail "--install-crds: resourcegraphdefinitions.kiln.dev not Established"
fi

# --- lifecycle: RGD -> CRD served -> instance -> children --------------------
echo "== test_lifecycle_create"
k apply -f "$FIX/app-rgd.yaml" >/dev/null
k wait --for=condition=Ready rgd/test-app --timeout=20s >/dev/null || fail "RGD not Ready"
expect_eq "rgd state" "$(k get rgd test-app -o 'jsonpath={.status.state}')" "Active"
expect_eq "rgd topologicalOrder" "$(k get rgd test-app -o 'jsonpath={.status.topologicalOrder}')" \
    '["config","deployment","service","extra"]'
k apply -f "$FIX/instances.yaml" >/dev/null
start=$(date +%s.%N)
k wait --for=condition=Ready testapp/one -n apps --timeout=30s >/dev/null || fail "instance not Ready"
echo "instance Ready after $(echo "$(date +%s.%N) - $start" | bc) s"
expect_eq "instance state" "$(jp testapp one '{.status.state}')" "ACTIVE"
expect_eq "observedGeneration" "$(jp testapp one '{.status.observedGeneration}')" "1"
expect_eq "condition types" \
    "$(jp testapp one '{range .status.conditions[*]}{.type}={.status} {end}')" \
    "Ready=True Reconciling=False Stalled=False GraphResolved=True ResourcesReady=True Validated=True "
expect_eq "Ready observedGeneration" \
    "$(jp testapp one '{.status.conditions[?(@.type=="Ready")].observedGeneration}')" "1"
expect_eq "resources" \
    "$(jp testapp one '{range .status.resources[*]}{.id}:{.kind}/{.name}:{.state} {end}')" \
    "config:ConfigMap/one-cfg:READY deployment:Deployment/one:READY service:Service/one:READY extra:ConfigMap/:EXCLUDED "
expect_eq "projected status" "$(jp testapp one '{.status.configName}/{.status.available}')" "one-cfg/2"
uid=$(jp testapp one '{.metadata.uid}')
for obj in configmap/one-cfg deployment/one service/one; do
    expect_eq "$obj labels" \
        "$(k get "$obj" -n apps -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by},{.metadata.labels.kiln\.dev/instance-uid},{.metadata.labels.kiln\.dev/instance-name},{.metadata.labels.kiln\.dev/instance-namespace},{.metadata.labels.kiln\.dev/rgd}')" \
        "kiln,$uid,one,apps,test-app"
    expect_eq "$obj ownerReference" \
        "$(k get "$obj" -n apps -o 'jsonpath={range .metadata.ownerReferences[*]}{.kind}/{.name}/{.uid}/{.controller}{end}')" \
        "TestApp/one/$uid/true"
    expect_match "$obj applied-hash" \
        "$(k get "$obj" -n apps -o 'jsonpath={.metadata.annotations.kiln\.dev/applied-hash}')" '^[0-9a-f]{64}$'
done
expect_eq "node labels" \
    "$(k get cm,deploy,svc -n apps -l kiln.dev/instance-name=one -o 'jsonpath={range .items[*]}{.metadata.labels.kiln\.dev/node} {end}')" \
    "config deployment service "
# The template copies the instance's labels and annotations: GitOps tracking
# keys must not reach the child, other keys do.
expect_eq "no tracking label" "$(k get cm one-cfg -n apps -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/instance}')" ""
expect_eq "other label kept" "$(k get cm one-cfg -n apps -o 'jsonpath={.metadata.labels.team}')" "blue"
expect_eq "no argocd annotation" \
    "$(k get cm one-cfg -n apps -o 'jsonpath={.metadata.annotations}' | grep -c 'argocd.argoproj.io\|kubectl.kubernetes.io')" "0"
expect_eq "finalizer" "$(jp testapp one '{.metadata.finalizers}')" '["kiln.dev/finalizer"]'
expect_match "inventory" "$(jp testapp one '{.metadata.annotations.kiln\.dev/inventory}')" \
    '^\[\[0,"config","v1","ConfigMap","apps","one-cfg"\],\[1,"deployment","apps/v1","Deployment","apps","one"\],\[2,"service","v1","Service","apps","one"\]\]$'

# --- a no-op reconcile sends nothing ------------------------------------------
echo "== test_noop_reconcile_sends_nothing"
# A restarted controller reconciles every instance from fresh caches; for a
# converged instance that must send no write at all.
poll_eq 10 2 jp testapp one '{.status.available}' || fail "available not projected"
sleep 0.5
stop_controller
start_controller
poll_sh 10 '[ "$(instance_successes)" -ge 1 ]' ||
    fail "instance not reconciled after restart"
sleep 0.5
expect_eq "writes after a no-op reconcile" "$(writes)" "0"

# --- update -------------------------------------------------------------------
echo "== test_lifecycle_update"
k patch testapp one -n apps --type merge -p '{"spec":{"replicas":3,"greeting":"hi","extra":true}}' >/dev/null
poll_eq 20 3 jp deployment one '{.spec.replicas}' || fail "deployment not scaled"
poll_eq 20 hi jp configmap one-cfg '{.data.greeting}' || fail "config not updated"
poll 20 k get configmap one-extra -n apps || fail "includeWhen true: extra not created"
k wait --for=condition=Ready testapp/one -n apps --timeout=20s >/dev/null || fail "not Ready after update"
expect_eq "observedGeneration after update" "$(jp testapp one '{.status.observedGeneration}')" "2"
echo "== test_include_when_prunes"
k patch testapp one -n apps --type merge -p '{"spec":{"extra":false}}' >/dev/null
poll 20 child_gone configmap one-extra || fail "includeWhen false: extra not pruned"
poll_eq 10 0 inventory_mentions one extra ||
    fail "inventory not shrunk after prune"

# --- drift ----------------------------------------------------------------------
echo "== test_drift_corrected"
k delete configmap one-cfg -n apps >/dev/null
poll 20 k get configmap one-cfg -n apps || fail "deleted child not recreated"
k wait --for=condition=Ready testapp/one -n apps --timeout=20s >/dev/null || fail "not Ready after drift"

# --- suspend ------------------------------------------------------------------
echo "== test_suspend"
k annotate testapp one -n apps kiln.dev/reconcile=suspended >/dev/null
poll_eq 10 ReconciliationSuspended jp testapp one '{.status.conditions[?(@.type=="ResourcesReady")].reason}' ||
    fail "suspend not reported"
k patch testapp one -n apps --type merge -p '{"spec":{"replicas":1}}' >/dev/null
sleep 0.5
expect_eq "suspended: no change applied" "$(jp deployment one '{.spec.replicas}')" "3"
k annotate testapp one -n apps kiln.dev/reconcile- >/dev/null
poll_eq 20 1 jp deployment one '{.spec.replicas}' || fail "resume did not apply"

# --- conflict -------------------------------------------------------------------
echo "== test_conflict_refused"
cat <<'Y' | k apply -f - >/dev/null
apiVersion: kiln.dev/v1alpha1
kind: TestApp
metadata: {name: two, namespace: apps}
spec: {name: one}
Y
poll_eq 20 True jp testapp two '{.status.conditions[?(@.type=="Stalled")].status}' ||
    fail "second claimant not Stalled"
expect_match "conflict message" "$(jp testapp two '{.status.conditions[?(@.type=="Stalled")].message}')" \
    'managed by another instance'
expect_eq "first owner kept" "$(jp configmap one-cfg '{.metadata.labels.kiln\.dev/instance-name}')" "one"
k delete testapp two -n apps --timeout=20s >/dev/null || fail "conflicting instance not deleted"
expect_eq "first owner's child survives" "$(jp configmap one-cfg '{.metadata.name}')" "one-cfg"

# --- invalid RGD update keeps the last good graph -----------------------------------
echo "== test_invalid_rgd_keeps_last_good_graph"
k apply -f "$FIX/app-broken.yaml" >/dev/null
poll_eq 20 False k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].status}' ||
    fail "broken RGD accepted"
expect_match "GraphAccepted message" \
    "$(k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].message}')" 'deploymnt'
k patch testapp one -n apps --type merge -p '{"spec":{"replicas":2}}' >/dev/null
poll_eq 20 2 jp deployment one '{.spec.replicas}' || fail "last good graph not serving"
k apply -f "$FIX/app-rgd.yaml" >/dev/null
poll_eq 20 True k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].status}' ||
    fail "fixed RGD not accepted"

echo "== test_template_checked_against_published_schema"
k apply -f "$FIX/typo-rgd.yaml" >/dev/null
poll_eq 20 False k get rgd test-typo -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].status}' ||
    fail "template with an unknown field accepted"
expect_match "typo message" \
    "$(k get rgd test-typo -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].message}')" 'replicsa'
k delete rgd test-typo --timeout=20s >/dev/null || fail "typo RGD not deleted"

echo "== test_breaking_crd_change_refused"
k apply -f "$FIX/app-breaking.yaml" >/dev/null
poll_eq 20 False k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].status}' ||
    fail "breaking change accepted"
expect_match "breaking message" \
    "$(k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].message}')" \
    'spec.properties.replicas|replicas.*type changed'
k apply -f "$FIX/app-rgd.yaml" >/dev/null
poll_eq 20 True k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="GraphAccepted")].status}' ||
    fail "RGD not accepted again"

# --- forEach and externalRef -------------------------------------------------
echo "== test_external_ref_missing_then_present"
k apply -f "$FIX/shards-rgd.yaml" >/dev/null
k wait --for=condition=Ready rgd/test-shards --timeout=20s >/dev/null || fail "shards RGD not Ready"
cat <<'Y' | k apply -f - >/dev/null
apiVersion: v1
kind: Namespace
metadata: {name: shared}
---
apiVersion: kiln.dev/v1alpha1
kind: TestShards
metadata: {name: s, namespace: apps}
spec: {name: s, shards: 2}
Y
poll_eq 10 PENDING jp testshards s '{.status.resources[0].state}' ||
    fail "missing externalRef not PENDING"
expect_eq "nothing applied while waiting" "$(k get cm -n apps -l kiln.dev/instance-name=s -o name)" ""
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cluster-settings, namespace: shared}\ndata: {region: eu-1}\n' |
    k apply -f - >/dev/null
k wait --for=condition=Ready testshards/s -n apps --timeout=20s >/dev/null || fail "not Ready once the externalRef exists"
expect_eq "shards created" "$(k get cm -n apps -l kiln.dev/instance-name=s -o 'jsonpath={range .items[*]}{.metadata.name}={.data.region} {end}')" \
    "s-1=eu-1 s-2=eu-1 "
expect_eq "external object not labelled" "$(k get cm cluster-settings -n shared -o 'jsonpath={.metadata.labels}')" ""
echo "== test_for_each_scale"
k patch testshards s -n apps --type merge -p '{"spec":{"shards":4}}' >/dev/null
poll_eq 20 4 count_children s || fail "scale up"
k patch testshards s -n apps --type merge -p '{"spec":{"shards":1}}' >/dev/null
poll_eq 20 1 count_children s || fail "scale down"
poll_eq 10 1 jp testshards s '{.status.shards}' || fail "projected shard count"
echo "== test_status_projection_follows_data"
k patch cm cluster-settings -n shared --type merge -p '{"data":{"region":"us-2"}}' >/dev/null
poll_eq 20 us-2 jp configmap s-1 '{.data.region}' || fail "externalRef change not propagated"
poll_eq 10 us-2 jp testshards s '{.status.region}' || fail "projection not updated"
k delete cm cluster-settings -n shared >/dev/null
poll_eq 10 "" jp testshards s '{.status.region}' || fail "projected field did not vanish"
k delete testshards s -n apps --timeout=20s >/dev/null || fail "shards instance not deleted"
expect_eq "shards deleted" "$(k get cm -n apps -l kiln.dev/instance-name=s -o name)" ""
k delete rgd test-shards --timeout=20s >/dev/null || fail "shards RGD not deleted"

# --- faults: dropped watches with lost history, 409 and 429 answers ----------------
echo "== test_faults_watch_loss_409_429"
fault() { curl -sf -X POST -H 'Content-Type: application/json' -d "$1" "$URL/kiln/faults" >/dev/null; }
# A change made while the watches are down and the history is gone: 410 on
# resume, relist, and the change is still reconciled.
fault '{"dropWatches":true}'
fault '{"compact":true}'
k patch testapp one -n apps --type merge -p '{"spec":{"greeting":"after-410"}}' >/dev/null
poll_eq 30 after-410 jp configmap one-cfg '{.data.greeting}' || fail "change during watch loss not reconciled"
# The next status write conflicts; the next apply is throttled with Retry-After.
fault '{"failNth":{"n":1,"code":409,"method":"PUT","pathPrefix":"/apis/kiln.dev/"}}'
fault '{"failNth":{"n":1,"code":429,"method":"PATCH","pathPrefix":"/api/v1/namespaces/apps/configmaps","retryAfterSeconds":1}}'
k patch testapp one -n apps --type merge -p '{"spec":{"greeting":"after-faults"}}' >/dev/null
poll_eq 30 after-faults jp configmap one-cfg '{.data.greeting}' || {
    fail "apply after 429 not retried"
    curl -s "$URL/kiln/faults" >&2
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^(workqueue|rest_client|controller_runtime_reconcile_total)' >&2
    k get cm one-cfg -n apps -o yaml --show-managed-fields >&2
}
poll_sh 30 '[ "$(jp testapp one "{.status.observedGeneration}")" = "$(jp testapp one "{.metadata.generation}")" ]' ||
    fail "status not written after 409"
k wait --for=condition=Ready testapp/one -n apps --timeout=20s >/dev/null || fail "not Ready after faults"
curl -sf -X DELETE "$URL/kiln/faults" >/dev/null
expect_eq "one ConfigMap per name after faults" "$(k get cm -n apps -l kiln.dev/instance-name=one -o name | sort | uniq -d)" ""

# --- a script over its limits fails its node only -----------------------------------
echo "== test_script_limit_does_not_block_others"
k apply -f "$FIX/spin-rgd.yaml" >/dev/null
k wait --for=condition=Ready rgd/test-spin --timeout=20s >/dev/null || fail "spin RGD not Ready"
printf 'apiVersion: kiln.dev/v1alpha1\nkind: TestSpin\nmetadata: {name: loop, namespace: apps}\nspec: {spin: true}\n---\napiVersion: kiln.dev/v1alpha1\nkind: TestSpin\nmetadata: {name: calm, namespace: apps}\nspec: {spin: false}\n' |
    k apply -f - >/dev/null
poll_eq 20 True jp testspin loop '{.status.conditions[?(@.type=="Stalled")].status}' || fail "runaway script not Stalled"
expect_match "limit message" "$(jp testspin loop '{.status.conditions[?(@.type=="Stalled")].message}')" 'limit|instruction'
k wait --for=condition=Ready testspin/calm -n apps --timeout=20s >/dev/null || fail "other instance blocked"
k patch testapp one -n apps --type merge -p '{"spec":{"greeting":"still-served"}}' >/dev/null
poll_eq 20 still-served jp configmap one-cfg '{.data.greeting}' || fail "other RGD blocked by a runaway script"
k delete testspin loop calm -n apps --timeout=20s >/dev/null || fail "spin instances not deleted"
k delete rgd test-spin --timeout=20s >/dev/null || fail "spin RGD not deleted"

echo "== test_events_and_metrics"
expect_match "Ready event recorded" \
    "$(k get events -n apps -o 'jsonpath={range .items[?(@.involvedObject.name=="one")]}{.reason}/{.type} {end}')" 'Ready/Normal'
metrics=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics")
for name in controller_runtime_reconcile_total controller_runtime_reconcile_time_seconds_bucket \
    workqueue_depth workqueue_adds_total workqueue_retries_total rest_client_requests_total \
    leader_election_master_status kiln_rgds kiln_instances kiln_cached_objects; do
    expect_match "metric $name" "$metrics" "^$name"
done
expect_match "kiln_rgds counts RGDs" "$(printf '%s\n' "$metrics" | grep '^kiln_rgds ')" '^kiln_rgds [1-9]'

# --- RGD deletion is held while instances exist -------------------------------------
echo "== test_rgd_deletion_held"
k delete rgd test-app --wait=false >/dev/null
poll_eq 10 DeletionBlocked k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}' ||
    fail "RGD deletion not held"
expect_match "held message names the instance" \
    "$(k get rgd test-app -o 'jsonpath={.status.conditions[?(@.type=="Ready")].message}')" 'apps/one'

# --- ordered deletion: a child finalizer holds its wave -------------------------------
echo "== test_ordered_deletion"
k patch service one -n apps --type merge -p '{"metadata":{"finalizers":["test.kiln.dev/hold"]}}' >/dev/null
k delete testapp one -n apps --wait=false >/dev/null
poll_sh 10 '[ -n "$(jp service one "{.metadata.deletionTimestamp}")" ]' || fail "service (last wave) not deleted first"
sleep 0.5
expect_eq "deployment waits for the service" "$(jp deployment one '{.metadata.deletionTimestamp}')" ""
expect_eq "instance state" "$(jp testapp one '{.status.state}')" "DELETING"
k patch service one -n apps --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null
poll 20 child_gone deployment one || fail "deployment not deleted after the service"
poll 20 child_gone configmap one-cfg || fail "config not deleted"
poll 20 child_gone testapp one || fail "instance finalizer not removed"
poll 20 absent rgd test-app || fail "RGD not deleted once its instances were gone"

# --- leader election: one leader; a clean stop hands over at once -----------------
echo "== test_leader_election_handover"
stop_controller
start_controller --leader-elect --leader-election-namespace default --leader-election-id kiln-test
A_PID=$CTL_PID
A_PORT=$METRICS_PORT
B_PORT=$(free_port)
"$KILN" controller --kubeconfig "$KUBECONFIG" --workers 1 --log-format json --log-level info \
    --metrics-bind-address "127.0.0.1:$B_PORT" --health-probe-bind-address 0 --leader-elect \
    --leader-election-namespace default --leader-election-id kiln-test 2>>"$WORK/ctl-b.err" &
B_PID=$!
sleep 1
expect_eq "leader A holds the Lease" "$(curl -s "http://127.0.0.1:$A_PORT/metrics" | awk '/^leader_election_master_status/ {print $2}')" "1"
expect_eq "candidate B is not ready" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$B_PORT/readyz")" "503"
expect_match "Lease holder" "$(k get lease kiln-test -n default -o 'jsonpath={.spec.holderIdentity}')" '_'"$A_PID"'$'
stop_controller
CTL_PID=$B_PID
METRICS_PORT=$B_PORT
poll 10 curl -sf "http://127.0.0.1:$B_PORT/readyz" || fail "B did not take over after A released the Lease"
expect_match "new Lease holder" "$(k get lease kiln-test -n default -o 'jsonpath={.spec.holderIdentity}')" '_'"$B_PID"'$'
k apply -f "$FIX/app-rgd.yaml" >/dev/null
k wait --for=condition=Ready rgd/test-app --timeout=20s >/dev/null || fail "new leader does not reconcile"
# A leader that dies without releasing: the standby waits out the 15 s lease.
C_PORT=$(free_port)
"$KILN" controller --kubeconfig "$KUBECONFIG" --workers 2 --log-format json --log-level info \
    --metrics-bind-address "127.0.0.1:$C_PORT" --health-probe-bind-address 0 --leader-elect \
    --leader-election-namespace default --leader-election-id kiln-test 2>>"$WORK/ctl-c.err" &
C_PID=$!
sleep 1
kill -KILL "$B_PID"
wait "$B_PID" 2>/dev/null
t0=$SECONDS
poll_sh 25 'curl -sf "http://127.0.0.1:$C_PORT/readyz"' || fail "standby did not take over a dead leader's Lease"
took=$((SECONDS - t0))
echo "standby took over after ${took} s"
[ "$took" -le 18 ] || fail "takeover took ${took} s, more than the lease duration plus a retry"
CTL_PID=$C_PID
METRICS_PORT=$C_PORT

# --- nesting: an RGD whose template is another RGD's kind -----------------------
echo "== test_nested_rgd_and_cascading_deletion"
k apply -f "$FIX/nested-rgd.yaml" >/dev/null
k wait --for=condition=Ready rgd/test-stack --timeout=20s >/dev/null || fail "nested RGD not Ready"
printf 'apiVersion: kiln.dev/v1alpha1\nkind: TestStack\nmetadata: {name: st, namespace: apps}\nspec: {name: st}\n' |
    k apply -f - >/dev/null
k wait --for=condition=Ready teststack/st -n apps --timeout=30s >/dev/null || fail "outer instance not Ready"
expect_eq "inner instance ACTIVE" "$(jp testapp st-app '{.status.state}')" "ACTIVE"
expect_eq "outer projects inner state" "$(jp teststack st '{.status.appState}')" "ACTIVE"
expect_eq "inner children exist" "$(k get cm,deploy,svc -n apps -l kiln.dev/instance-name=st-app -o name | wc -l)" "3"
expect_eq "marker after inner Ready" "$(jp configmap st-marker '{.data.app}')" "st-app"
k delete teststack st -n apps --timeout=30s >/dev/null || fail "outer instance not deleted"
expect_eq "inner instance deleted" "$(k get testapp -n apps -o name)" ""
expect_eq "inner children deleted" "$(k get cm,deploy,svc -n apps -l kiln.dev/instance-name=st-app -o name)" ""
k delete rgd test-stack --timeout=20s >/dev/null || fail "nested RGD not deleted"
k delete rgd test-app --timeout=20s >/dev/null || fail "RGD not deleted by the new leader"

stop_controller

# --- namespace mode: --namespace reconciles one namespace only ----------------------
test_namespace_mode() {
    echo "== test_namespace_mode"
    local out rc=0
    out=$("$KILN" controller --namespace 'Bad_NS' --kubeconfig "$KUBECONFIG" 2>&1 >/dev/null) || rc=$?
    expect_eq "--namespace Bad_NS exit code" "$rc" "2"
    expect_eq "--namespace Bad_NS message" "$(printf '%s\n' "$out" | head -1)" \
        "kiln controller: --namespace: \"Bad_NS\" is not a valid namespace name (a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
    # Counters (a fault on the millionth request never fires): no list or
    # watch of the instance kind or of a namespaced child kind may leave
    # team-a (a cluster-wide informer makes two: its list and its watch).
    curl -sf -X DELETE "$URL/kiln/faults" >/dev/null
    local p
    for p in /apis/kiln.dev/v1alpha1/testapps /api/v1/configmaps /apis/apps/v1/deployments \
        /api/v1/services; do
        fault '{"failNth":{"n":1000000,"code":500,"method":"GET","pathPrefix":"'"$p"'"}}' ||
            fail "cannot install the request counter for $p"
    done
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-b}\n' |
        k apply -f - >/dev/null
    start_controller --namespace team-a
    k apply -f "$FIX/app-rgd.yaml" >/dev/null
    k wait --for=condition=Ready rgd/test-app --timeout=20s >/dev/null || fail "RGD not Ready in namespace mode"
    printf 'apiVersion: kiln.dev/v1alpha1\nkind: TestApp\nmetadata: {name: a, namespace: team-a}\nspec: {name: a}\n---\napiVersion: kiln.dev/v1alpha1\nkind: TestApp\nmetadata: {name: b, namespace: team-b}\nspec: {name: b}\n' |
        k apply -f - >/dev/null
    k wait --for=condition=Ready testapp/a -n team-a --timeout=30s >/dev/null || fail "team-a instance not Ready"
    expect_eq "team-a children" \
        "$(k get cm,deploy,svc -n team-a -l kiln.dev/instance-name=a -o 'jsonpath={range .items[*]}{.kind}/{.metadata.name} {end}')" \
        "ConfigMap/a-cfg Deployment/a Service/a "
    sleep 2
    expect_eq "team-b instance exists" "$(k get testapp b -n team-b -o 'jsonpath={.metadata.name}')" "b"
    expect_eq "team-b instance has no status" "$(k get testapp b -n team-b -o 'jsonpath={.status}')" ""
    expect_eq "team-b instance has no finalizer" "$(k get testapp b -n team-b -o 'jsonpath={.metadata.finalizers}')" ""
    expect_eq "team-b instance has no inventory" \
        "$(k get testapp b -n team-b -o 'jsonpath={.metadata.annotations.kiln\.dev/inventory}')" ""
    expect_eq "team-b children never created" "$(k get cm,deploy,svc -n team-b -l kiln.dev/instance-name=b -o name)" ""
    expect_eq "team-b ConfigMap never created" "$(absent configmap b-cfg -n team-b && echo absent)" "absent"
    local st seen
    st=$(curl -sf "$URL/kiln/faults")
    for p in /apis/kiln.dev/v1alpha1/testapps /api/v1/configmaps /apis/apps/v1/deployments /api/v1/services; do
        seen=$(printf '%s' "$st" | python3 -c 'import json,sys; p=sys.argv[1]; print(sum(r["seen"] for r in json.load(sys.stdin)["failNth"] if r["pathPrefix"] == p))' "$p")
        expect_eq "no cluster-wide GET of $p" "$seen" "0"
    done
    curl -sf -X DELETE "$URL/kiln/faults" >/dev/null
    # A cluster-scoped kind is served (its CRD generated) but no namespace
    # owns its instances: not reconciled, said once per RGD.
    k apply -f - >/dev/null <<'YAML'
apiVersion: kiln.dev/v1alpha1
kind: ResourceGraphDefinition
metadata: {name: test-global}
spec:
  schema:
    apiVersion: v1alpha1
    kind: TestGlobal
    scope: Cluster
    spec:
      name: string | required=true
  resources:
    - id: config
      template:
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: "${schema.spec.name}-global", namespace: team-a}
        data: {k: v}
YAML
    k wait --for=condition=Ready rgd/test-global --timeout=20s >/dev/null || fail "cluster-scoped RGD not Ready in namespace mode"
    printf 'apiVersion: kiln.dev/v1alpha1\nkind: TestGlobal\nmetadata: {name: g}\nspec: {name: g}\n' | k apply -f - >/dev/null
    k annotate rgd test-global example.kiln.dev/poke=1 >/dev/null
    sleep 1
    expect_eq "cluster-scoped instance exists" "$(k get testglobal g -o 'jsonpath={.metadata.name}')" "g"
    expect_eq "cluster-scoped instance has no status" "$(k get testglobal g -o 'jsonpath={.status}')" ""
    expect_eq "cluster-scoped instance has no finalizer" "$(k get testglobal g -o 'jsonpath={.metadata.finalizers}')" ""
    expect_eq "cluster-scoped instance's child never created" "$(absent configmap g-global -n team-a && echo absent)" "absent"
    expect_eq "cluster-scoped kind skipped, logged once" \
        "$(grep -c 'rgd test-global: instances of TestGlobal.kiln.dev are cluster-scoped and are not reconciled in namespace mode (--namespace team-a)' "$WORK/ctl.err")" "1"
    k delete testglobal g --timeout=10s >/dev/null || fail "cluster-scoped instance not deleted"
    k delete rgd test-global --timeout=20s >/dev/null || fail "cluster-scoped RGD not deleted in namespace mode"
    expect_match "namespace mode logged" "$(grep -c 'reconciling instances in namespace team-a only' "$WORK/ctl.err")" '^[1-9]'
    k delete testapp a -n team-a --timeout=30s >/dev/null || fail "team-a instance not deleted"
    expect_eq "team-a children deleted" "$(k get cm,deploy,svc -n team-a -l kiln.dev/instance-name=a -o name)" ""
    k delete testapp b -n team-b --timeout=10s >/dev/null || fail "team-b instance not deleted"
    k delete rgd test-app --timeout=20s >/dev/null || fail "RGD not deleted in namespace mode"
    stop_controller
}
test_namespace_mode

# --- a dev-cluster restart: the controller converges, no child lost or doubled -------
echo "== test_devcluster_restart_with_data_dir"
# A fresh dev cluster that keeps its state (and its token) in a data dir. The
# controller and kubectl use a copy of the first kubeconfig: a client keeps
# the credentials it was given, and the restart must keep them valid.
stop_server
start_server --data-dir "$WORK/dc-data"
PORT=${URL##*:}
cp "$KUBECONFIG" "$WORK/kept.kubeconfig"
export KUBECONFIG="$WORK/kept.kubeconfig"
k apply -f "$SRC/crds/resourcegraphdefinitions.kiln.dev.yaml" >/dev/null
start_controller
k apply -f "$FIX/app-rgd.yaml" >/dev/null
k wait --for=condition=Ready rgd/test-app --timeout=20s >/dev/null || fail "RGD not Ready before the restart"
k apply -f "$FIX/instances.yaml" >/dev/null
k wait --for=condition=Ready testapp/one -n apps --timeout=20s >/dev/null || fail "instance not Ready before the restart"
children() { k get cm,deploy,svc -n apps -l kiln.dev/instance-name=one -o 'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.uid} {end}'; }
before=$(children)
expect_match "three children before the restart" "$before" '^ConfigMap/one-cfg=[^ ]+ Deployment/one=[^ ]+ Service/one=[^ ]+ $'
stop_server KILL 2>/dev/null
start_server --data-dir "$WORK/dc-data" --port "$PORT"
export KUBECONFIG="$WORK/kept.kubeconfig"
expect_eq "same URL after the restart" "$URL" "http://127.0.0.1:$PORT"
expect_eq "same kubeconfig after the restart" "$(cmp "$WORK/kubeconfig" "$KUBECONFIG" && echo same)" "same"
k patch testapp one -n apps --type merge -p '{"spec":{"replicas":3,"greeting":"after-restart"}}' >/dev/null ||
    fail "old kubeconfig refused after the restart"
poll_eq 15 3 jp deployment one '{.spec.replicas}' || fail "change after the restart not applied"
poll_eq 5 after-restart jp configmap one-cfg '{.data.greeting}' || fail "config not updated after the restart"
poll_sh 10 '[ "$(jp testapp one "{.status.observedGeneration}")" = "$(jp testapp one "{.metadata.generation}")" ]' ||
    fail "status not written after the restart"
k wait --for=condition=Ready testapp/one -n apps --timeout=10s >/dev/null || fail "instance not Ready after the restart"
expect_eq "children kept their uids, none lost or doubled" "$(children)" "$before"
expect_eq "ConfigMaps owned by the instance" "$(k get cm -n apps -l kiln.dev/instance-name=one -o name)" "configmap/one-cfg"
expect_eq "no 401 across the restart" \
    "$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -c '^rest_client_requests_total{code="401"')" "0"
stop_controller
finish
