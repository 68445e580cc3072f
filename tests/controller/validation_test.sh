#!/usr/bin/env bash
# tests/controller/validation_test.sh: GPU validation nodes end to end. The
# controller creates one Job per selected GPU node; the dev cluster runs
# kiln-gpucheck in simulation for its simulated GPU nodes; the instance is
# Validated and Ready only when every node passed, and says which node,
# check, measured and expected value when one did not.
# Env: KILN (the kiln binary), DEVCLUSTER (kiln-devcluster), KILN_SOURCE_DIR.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KILN_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
FIX="$HERE/fixtures"
# shellcheck source=../devcluster/lib.sh
. "$SRC/tests/devcluster/lib.sh"
# shellcheck source=ctl.sh
. "$HERE/ctl.sh"

jp() { kubectl get validatedapp "$1" -n gpu -o "jsonpath=$2" 2>/dev/null; }
cond() { jp "$1" "{.status.conditions[?(@.type==\"$2\")].$3}"; }
jobs_of() {
    kubectl get jobs -n gpu -l "kiln.dev/instance-name=$1" \
        -o 'jsonpath={range .items[*]}{.metadata.labels.kiln\.dev/validation-node}{"\n"}{end}' |
        sort | tr '\n' ' '
}
job_names() {
    kubectl get jobs -n gpu -l "kiln.dev/instance-name=$1" -o 'jsonpath={.items[*].metadata.name}'
}

# Two good H100 nodes, one slow one, one that never runs pods.
start_server --simulate-gpus "h100x2:2,h100x2:1:slow,h100x2:1:notready"
start_kiln_controller --gpucheck-image registry.example.com/gpu/kiln-gpucheck:test

nodes=$(kubectl get nodes -o name | sed 's|node/||' | sort | tr '\n' ' ')
expect_eq "simulated nodes" "$nodes" \
    "kiln-dev kiln-gpu-h100x2-0 kiln-gpu-h100x2-1 kiln-gpu-h100x2-notready-0 kiln-gpu-h100x2-slow-0 "
kubectl label node kiln-gpu-h100x2-0 kiln-gpu-h100x2-1 pool=good >/dev/null
kubectl label node kiln-gpu-h100x2-slow-0 pool=slow >/dev/null
kubectl label node kiln-gpu-h100x2-notready-0 pool=down >/dev/null
kubectl label node kiln-dev pool=cpu >/dev/null
kubectl create namespace gpu --dry-run=client -o yaml | kubectl apply -f - >/dev/null

poll_eq 20 "True" kubectl get crd resourcegraphdefinitions.kiln.dev \
    -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' ||
    fail "kiln CRDs not installed"
kubectl apply -f "$FIX/validated-app.yaml" >/dev/null || fail "RGD apply"
kubectl wait --for=condition=Ready rgd/validated-app --timeout=30s >/dev/null || fail "RGD not Ready"

inst() {
    local name=$1 pool=$2 extra=${3:-}
    kubectl apply -f - >/dev/null <<EOF
apiVersion: kiln.dev/v1alpha1
kind: ValidatedApp
metadata: {name: $name, namespace: gpu}
spec: {pool: $pool$extra}
EOF
}

echo "== test_validated_and_ready_on_simulated_h100"
inst good good
if kubectl wait --for=condition=Ready validatedapp/good -n gpu --timeout=60s >/dev/null; then
    echo "ok: instance Ready after validation"
else
    fail "instance on good nodes not Ready: $(cond good Ready message)"
fi
expect_eq "Validated" "$(cond good Validated status)/$(cond good Validated reason)" "True/Passed"
expect_eq "one Job per selected node" "$(jobs_of good)" "kiln-gpu-h100x2-0 kiln-gpu-h100x2-1 "
expect_eq "status.validation phase" "$(jp good '{.status.validation.gpuCheck.phase}')" "Passed"
expect_eq "simulated" "$(jp good '{.status.validation.gpuCheck.simulated}')" "true"
expect_eq "per-node results" \
    "$(jp good '{range .status.validation.gpuCheck.nodes[*]}{.name}={.result},{.accelerator},{.gpus} {end}')" \
    "kiln-gpu-h100x2-0=passed,h100-sxm,2 kiln-gpu-h100x2-1=passed,h100-sxm,2 "
expect_eq "per-check results on the first node" \
    "$(jp good '{range .status.validation.gpuCheck.nodes[0].checks[*]}{.name}={.result} {end}')" \
    "device=pass memory=pass hbm-bandwidth=pass gemm=pass pcie=pass p2p=pass "
expect_match "a measured value and its threshold" \
    "$(jp good '{.status.validation.gpuCheck.nodes[0].checks[?(@.name=="gemm")].threshold}')" \
    '^494\.5$'
expect_eq "projected status reads the validation" "$(jp good '{.status.validationPassed}')" "true"
expect_eq "the dependent reads the node list" \
    "$(kubectl get deploy good-server -n gpu -o 'jsonpath={.metadata.annotations.example\.com/validated-on}')" \
    "2 nodes"
sa=$(kubectl get job -n gpu "$(job_names good | cut -d' ' -f1)" \
    -o 'jsonpath={.spec.template.spec.serviceAccountName}/{.spec.template.spec.automountServiceAccountToken}')
expect_eq "Jobs run as their own ServiceAccount without a token" "$sa" "kiln-gpucheck/false"
expect_eq "Jobs use --gpucheck-image" \
    "$(kubectl get job -n gpu "$(job_names good | cut -d' ' -f1)" -o 'jsonpath={.spec.template.spec.containers[0].image}')" \
    "registry.example.com/gpu/kiln-gpucheck:test"
expect_eq "that ServiceAccount has no bindings" \
    "$(kubectl get rolebindings,clusterrolebindings -A -o json |
        python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin)["items"] for s in i.get("subjects") or [] if s.get("name")=="kiln-gpucheck"))')" \
    "0"

echo "== test_slow_card_is_not_ready"
inst slow slow
poll_eq 60 "Failed" cond slow Validated reason || fail "slow card: Validated reason $(cond slow Validated reason)"
msg=$(cond slow Validated message)
echo "slow card: $msg"
expect_match "the message names node, check, measured and expected" "$msg" \
    '^gpuCheck: (hbm-bandwidth|gemm) on node kiln-gpu-h100x2-slow-0 GPU 1: [a-zA-Z0-9]+ measured [0-9.]+ [A-Za-z/]+, expected >= [0-9.]+ '
expect_eq "Ready" "$(cond slow Ready status)/$(cond slow Ready reason)" "False/ValidationFailed"
expect_eq "Stalled" "$(cond slow Stalled status)" "True"
expect_eq "state" "$(jp slow '{.status.state}')" "ERROR"
expect_eq "the dependent was never created" \
    "$(kubectl get deploy slow-server -n gpu -o name 2>/dev/null)" ""
expect_eq "failing checks shown as fail" \
    "$(jp slow '{range .status.validation.gpuCheck.nodes[0].checks[*]}{.name}={.result} {end}')" \
    "device=pass memory=pass hbm-bandwidth=fail gemm=fail pcie=pass p2p=pass "

echo "== test_bad_input_fails_closed"
inst unknown good ", accelerator: h900"
poll_eq 30 "Failed" cond unknown Validated reason || fail "unknown accelerator: $(cond unknown Validated reason)"
expect_match "unknown accelerator" "$(cond unknown Validated message)" \
    '^gpuCheck: unknown accelerator "h900" \(known: a100-sxm, b200, h100-pcie, h100-sxm, h200, l40s\)$'
expect_eq "no Job for an unknown accelerator" "$(jobs_of unknown)" ""
inst nonode nowhere
poll_eq 30 "Failed" cond nonode Validated reason || fail "no node: $(cond nonode Validated reason)"
expect_eq "no matching node" "$(cond nonode Validated message)" \
    "gpuCheck: no node matches the nodeSelector pool=nowhere"
inst cpu cpu
poll_eq 30 "Failed" cond cpu Validated reason || fail "cpu node: $(cond cpu Validated reason)"
expect_eq "a selected node without GPUs" "$(cond cpu Validated message)" \
    "gpuCheck: node kiln-dev matches the nodeSelector but advertises no nvidia.com/gpu"
inst down down ", timeout: 3"
poll_eq 40 "Failed" cond down Validated reason || fail "never started: $(cond down Validated reason)"
expect_match "a Job that never starts" "$(cond down Validated message)" \
    '^gpuCheck: node kiln-gpu-h100x2-notready-0: Job down-gpucheck-[0-9a-f]{10} (failed \(DeadlineExceeded|did not finish within 3 s)'
echo "never started: $(cond down Validated message)"
expect_eq "never Ready" "$(cond down Ready status)" "False"

echo "== test_revalidate_reruns_and_cleans_up"
before=$(job_names good)
new_jobs() {
    local n=0 j
    for j in $(job_names good); do
        case " $before " in *" $j "*) ;; *) n=$((n + 1)) ;; esac
    done
    echo "$n"
}
kubectl annotate validatedapp good -n gpu kiln.dev/revalidate=1 --overwrite >/dev/null
if poll_eq 30 "2" new_jobs; then
    echo "ok: revalidation created a new Job per node"
else
    fail "revalidate: jobs now $(job_names good), before $before"
fi
poll_eq 30 "" sh -c "for j in $before; do kubectl get job -n gpu \$j -o name 2>/dev/null; done" ||
    fail "the Jobs of the earlier run were not deleted"
kubectl wait --for=condition=Ready validatedapp/good -n gpu --timeout=60s >/dev/null ||
    fail "not Ready again after revalidation"

echo "== test_new_gpu_node_is_validated"
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kiln-gpu-late-0
  labels: {pool: good, nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, kubernetes.io/hostname: kiln-gpu-late-0}
EOF
kubectl patch node kiln-gpu-late-0 --subresource=status --type=merge -p \
    '{"status":{"allocatable":{"nvidia.com/gpu":"2"},"capacity":{"nvidia.com/gpu":"2"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ready"}]}}' \
    >/dev/null || fail "node status patch"
if poll_eq 30 "kiln-gpu-h100x2-0 kiln-gpu-h100x2-1 kiln-gpu-late-0 " jobs_of good; then
    echo "ok: a GPU node joining gets its own Job, the others keep theirs"
else
    fail "new node: jobs of good are $(jobs_of good)"
fi

echo "== test_deleting_the_instance_deletes_its_jobs"
kubectl delete validatedapp good -n gpu --timeout=60s >/dev/null || fail "delete"
poll_eq 30 "" jobs_of good || fail "Jobs left after deletion: $(jobs_of good)"

stop_kiln_controller
finish
