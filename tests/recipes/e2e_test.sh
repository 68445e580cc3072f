#!/usr/bin/env bash
# tests/recipes/e2e_test.sh CASE: the shipped recipes end to end. The real
# controller runs against the dev cluster with simulated GPU nodes; the test
# drives it with kubectl as a user would: CRDs of the children's operators,
# the recipe's RGD, its example instance, `kubectl wait --for=condition=Ready`.
# The test also plays the operators the dev cluster does not simulate: a
# Gateway controller (Gateway, HTTPRoute and InferencePool status), KServe
# (LLMInferenceService Ready) and Argo CD (Application health and sync).
#
# Cases (one dev cluster each, so an example without gpuProduct validates
# exactly the cards it names):
#   h100     InferenceStack qwen, KServeLLM qwen-kserve, VLLMService coder
#   h200     InferenceStack llama (PVC cache, PodMonitor), PDStack, WideEPStack
#   l40s     VLLMService chat
#   slow     InferenceStack qwen on a slow H100: Validated=False, no vLLM
#   runtime  ClusterRuntime eks-h100-inference-argocd, wave by wave
# Env: KILN (the kiln binary), DEVCLUSTER (kiln-devcluster), KILN_SOURCE_DIR.
set -u
CASE=${1:?usage: e2e_test.sh h100|h200|l40s|slow|runtime}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KILN_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
FIX="$HERE/fixtures/e2e"
REC="$SRC/recipes"
# shellcheck source=../devcluster/lib.sh
. "$SRC/tests/devcluster/lib.sh"
CTL_PID=""
BG_PIDS=""
T0=$SECONDS

cleanup() {
    local p
    for p in $BG_PIDS; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ -n "$CTL_PID" ]; then
        kill -TERM "$CTL_PID" 2>/dev/null
        wait "$CTL_PID" 2>/dev/null
    fi
    stop_server
    if [ "$FAILS" -ne 0 ]; then
        echo "--- controller log (last 40 lines)" >&2
        grep -v "the object has been modified" "$WORK/ctl.err" | tail -40 >&2
        [ -s "$WORK/operators.err" ] && tail -5 "$WORK/operators.err" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT


apply() { kubectl apply -f "$@" >/dev/null || fail "kubectl apply -f $*"; }

namespaces() {
    local ns
    for ns in "$@"; do
        kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    done
}

# The Secret llm-d's model servers read HF_TOKEN from (recipes/README.md).
hf_token() {
    local ns
    for ns in "$@"; do
        kubectl create secret generic llm-d-hf-token -n "$ns" --from-literal=HF_TOKEN=hf_test \
            --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    done
}

# doc FILE INDEX: one document of a multi-document YAML file, as JSON.
doc() {
    python3 - "$1" "$2" <<'EOF'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print(json.dumps(docs[int(sys.argv[2])]))
EOF
}

# Starts the dev cluster with the given --simulate-gpus, the controller, and
# records every watch event of the kinds whose order the test checks (one
# resourceVersion counter serves all kinds, so event order is creation order).
start_cluster() {
    start_server --simulate-gpus "$1"
    "$KILN" controller --kubeconfig "$KUBECONFIG" --workers 2 --log-format json \
        --log-level info --install-crds --metrics-bind-address 0 \
        --health-probe-bind-address 0 2>>"$WORK/ctl.err" &
    CTL_PID=$!
    poll_eq 20 "True" kubectl get crd resourcegraphdefinitions.kiln.dev \
        -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' ||
        fail "kiln CRDs not installed"
}

# watch_kind PATH: appends PATH's watch events (all namespaces) to $WORK/events.
watch_kind() {
    curl -sN "$URL$1?watch=1" >>"$WORK/events.$(echo "$1" | tr / _)" 2>/dev/null &
    BG_PIDS="$BG_PIDS $!"
}

# deleted_in_order NS NAME:PATH ...: the objects' DELETED watch events came in
# the order given (resourceVersions of the deletions increase).
deleted_in_order() {
    local ns=$1
    shift
    python3 - "$WORK" "$ns" "$@" <<'PY'
import json, sys
work, ns, items = sys.argv[1], sys.argv[2], sys.argv[3:]
rvs = []
for item in items:
    name, path = item.split(":", 1)
    rv = None
    with open("%s/events.%s" % (work, path.replace("/", "_"))) as f:
        for line in f:
            e = json.loads(line)
            md = e["object"]["metadata"]
            if e["type"] == "DELETED" and md["name"] == name and md.get("namespace") == ns:
                rv = int(md["resourceVersion"])
    if rv is None:
        sys.exit("no DELETED event for %s in %s" % (name, path))
    rvs.append((rv, name))
print(" > ".join("%s (rv %d)" % (n, r) for r, n in rvs))
sys.exit(0 if [r for r, _ in rvs] == sorted(r for r, _ in rvs) else 1)
PY
}

# Plays the controllers the dev cluster lacks, every 0.3 s, in the background:
# a Gateway controller accepts Gateways, HTTPRoutes and InferencePools; KServe
# reports its LLMInferenceServices Ready. Only objects without that status yet.
play_operators() {
    (
        while :; do
            kubectl get gateways.gateway.networking.k8s.io,httproutes.gateway.networking.k8s.io,inferencepools.inference.networking.k8s.io,llminferenceservices.serving.kserve.io \
                -A -o json 2>/dev/null | python3 -c '
import json, sys
def cond(t, r):
    return {"type": t, "status": "True", "reason": r, "message": "",
            "lastTransitionTime": "2025-01-01T00:00:00Z"}
try:
    items = json.load(sys.stdin)["items"]
except ValueError:
    items = []
for o in items:
    st, kind, md = o.get("status") or {}, o["kind"], o["metadata"]
    if kind == "Gateway":
        if st.get("conditions"):
            continue
        s = {"conditions": [cond("Accepted", "Accepted"), cond("Programmed", "Programmed")]}
    elif kind == "LLMInferenceService":
        if st.get("conditions"):
            continue
        s = {"conditions": [cond("Ready", "Ready")]}
    else:
        if st.get("parents"):
            continue
        ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
        if kind == "HTTPRoute":
            p = o["spec"]["parentRefs"][0]
            ref.update(name=p["name"], namespace=p.get("namespace", md["namespace"]))
        else:
            ref.update(name="inference-gateway", namespace="kgateway-system")
        s = {"parents": [{"parentRef": ref, "controllerName": "kgateway.dev/kgateway",
                          "conditions": [cond("Accepted", "Accepted"),
                                         cond("ResolvedRefs", "ResolvedRefs")]}]}
    print(kind.lower() + "s." + o["apiVersion"].split("/")[0], md["namespace"], md["name"],
          json.dumps({"status": s}))
' | while read -r res ns name patch; do
                kubectl patch "$res" "$name" -n "$ns" --subresource=status --type=merge \
                    -p "$patch" >/dev/null 2>>"$WORK/operators.err"
            done
            sleep 0.3
        done
    ) &
    BG_PIDS="$BG_PIDS $!"
}

# jp KIND NAME NS JSONPATH
jp() { kubectl get "$1" "$2" -n "$3" -o "jsonpath=$4" 2>/dev/null; }
cond() { jp "$1" "$2" "$3" "{.status.conditions[?(@.type==\"$4\")].$5}"; }

# wait_ready KIND NAME NS TIMEOUT: kubectl wait as a user would; on failure,
# say what the instance reports.
wait_ready() {
    local t0=$SECONDS
    if kubectl wait --for=condition=Ready "$1/$2" -n "$3" --timeout="$4s" >/dev/null; then
        echo "ok: $1/$2 Ready after $((SECONDS - t0)) s"
        return 0
    fi
    fail "$1/$2 not Ready: $(kubectl get "$1" "$2" -n "$3" -o json |
        python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("status")))')"
    return 1
}

# check_validated KIND NAME NS NODES: Validated=True and status.validation
# shows every named simulated node passed every check.
check_validated() {
    local k=$1 n=$2 ns=$3 want=$4
    expect_eq "$n: Validated" "$(cond "$k" "$n" "$ns" Validated status)" "True"
    expect_eq "$n: validation phase" \
        "$(jp "$k" "$n" "$ns" '{.status.validation.gpuCheck.phase}')" "Passed"
    expect_eq "$n: simulated nodes passed" \
        "$(jp "$k" "$n" "$ns" '{range .status.validation.gpuCheck.nodes[*]}{.name}={.result}/{.simulated} {end}')" \
        "$want"
    expect_eq "$n: every check passed on every node" \
        "$(jp "$k" "$n" "$ns" '{.status.validation.gpuCheck.nodes[*].checks[*].result}' |
            tr ' ' '\n' | sort -u | tr '\n' ' ')" "pass "
}

# check_children DIR PREFIX: every object of DIR/expected.yaml named PREFIX or
# PREFIX-* exists, and holds at least what the golden render holds (the live
# one may add the API server's defaults).
check_children() {
    local out
    out=$(python3 - "$1/expected.yaml" "$2" <<'EOF'
import json, os, subprocess, sys, yaml
path, prefix = sys.argv[1], sys.argv[2]
def sub(want, got, at):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [at]
        return [p for k, v in want.items() for p in sub(v, got.get(k), at + "." + k)]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [at]
        return [p for i, v in enumerate(want) for p in sub(v, got[i], "%s[%d]" % (at, i))]
    # The golden render is YAML; quantities such as 8 and "8" are the same value.
    return [] if want == got or str(want) == str(got) else [at]
n = 0
for d in yaml.safe_load_all(open(path)):
    md = (d or {}).get("metadata", {})
    if not (md.get("name") == prefix or md.get("name", "").startswith(prefix + "-")):
        continue
    if d["kind"] in os.environ.get("CHILD_SKIP", "").split(","):
        continue
    n += 1
    what = "%s/%s" % (d["kind"], md["name"])
    group = d["apiVersion"].rpartition("/")[0]
    res = d["kind"].lower() + ("." + group if group else "")
    args = ["kubectl", "get", res, md["name"], "-o", "json"]
    if md.get("namespace"):
        args += ["-n", md["namespace"]]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        print("missing %s: %s" % (what, r.stderr.strip()))
        continue
    live = json.loads(r.stdout)
    for k in ("metadata", "spec", "data", "rules", "roleRef", "subjects"):
        if k not in d:
            continue
        w = d[k]
        if k == "metadata":
            w = {x: w[x] for x in ("name", "namespace", "labels", "annotations") if x in w}
        bad = sub(w, live.get(k), k)
        if bad:
            print("%s differs from the golden render at %s" % (what, ", ".join(bad[:5])))
print("checked %d" % n)
EOF
)
    case "$out" in
    "checked "[1-9]*) echo "ok: $2: children as in $(basename "$1")/expected.yaml (${out#checked })" ;;
    *) fail "$2: children: $out" ;;
    esac
}

# gated_after KIND-PATH NAME NS INSTANCE: the child NAME was first seen after
# every validation Job of INSTANCE had completed (watch event order).
gated_after() {
    local r
    r=$(python3 - "$WORK" "$1" "$2" "$3" "$4" <<'EOF'
import glob, json, sys
work, path, name, ns, inst = sys.argv[1:]
def events(p):
    try:
        for line in open(work + "/events." + p.replace("/", "_")):
            line = line.strip()
            if line:
                e = json.loads(line)
                if "object" not in e:
                    sys.exit("watch of %s failed: %s" % (p, line))
                yield e
    except FileNotFoundError:
        return
done, jobs = {}, set()
for e in events("/apis/batch/v1/jobs"):
    o = e["object"]
    md = o["metadata"]
    if md.get("namespace") != ns or md.get("labels", {}).get("kiln.dev/instance-name") != inst:
        continue
    jobs.add(md["name"])
    conds = (o.get("status") or {}).get("conditions") or []
    if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
        done.setdefault(md["name"], int(md["resourceVersion"]))
created = None
for e in events(path):
    md = e["object"]["metadata"]
    if e["type"] == "ADDED" and md["name"] == name and md.get("namespace") == ns:
        created = int(md["resourceVersion"])
        break
if not jobs:
    print("no validation Job of %s seen" % inst)
elif len(done) != len(jobs):
    print("Jobs %s never completed" % sorted(jobs - set(done)))
elif created is None:
    print("%s never created" % name)
elif created <= max(done.values()):
    print("%s created at resourceVersion %d, before the last Job completed (%d)"
          % (name, created, max(done.values())))
else:
    print("ok %d jobs completed by rv %d, %s created at rv %d"
          % (len(jobs), max(done.values()), name, created))
EOF
)
    case "$r" in
    ok*) echo "ok: $4: $2 gated on validation (${r#ok })" ;;
    *) fail "$4: $2 not gated on validation: $r" ;;
    esac
}

install_operator_crds() {
    local f
    for f in "$@"; do apply "$FIX/$f.crds.yaml"; done
}

apply_rgd() {
    apply "$1"
    local name
    name=$(python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$1")
    kubectl wait --for=condition=Ready "rgd/$name" --timeout=30s >/dev/null ||
        fail "RGD $name not Ready: $(kubectl get rgd "$name" -o jsonpath='{.status.conditions}')"
}

# The shared Gateway the ClusterRuntime recipe creates, which the inference
# examples name (inference-gateway in kgateway-system).
shared_gateway() {
    namespaces kgateway-system
    kubectl apply -f - >/dev/null <<'EOF' || fail "Gateway"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: inference-gateway, namespace: kgateway-system}
spec:
  gatewayClassName: kgateway
  listeners:
    - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
EOF
}

inference_setup() {
    start_cluster "$1"
    install_operator_crds gateway-api lws prometheus-operator kserve
    watch_kind /apis/batch/v1/jobs
    watch_kind /apis/apps/v1/deployments
    watch_kind /apis/leaderworkerset.x-k8s.io/v1/leaderworkersets
    watch_kind /apis/serving.kserve.io/v1alpha2/llminferenceservices
    watch_kind /apis/gateway.networking.k8s.io/v1/httproutes
    watch_kind /apis/inference.networking.k8s.io/v1/inferencepools
    play_operators
    shared_gateway
}

case_h100() {
    inference_setup "h100x8:2"
    local passed="kiln-gpu-h100x8-0=passed/true kiln-gpu-h100x8-1=passed/true "
    namespaces llm-d serving models
    hf_token llm-d serving models

    echo "== test_inference_stack_ready_after_validation"
    local d="$REC/inference/inference-stack"
    apply_rgd "$d/rgd.yaml"
    doc "$d/instance.yaml" 0 | kubectl apply -f - >/dev/null || fail "apply qwen"
    echo "== test_kserve_llm_ready_after_validation"
    apply_rgd "$REC/inference/kserve/rgd.yaml"
    apply "$REC/inference/kserve/instance.yaml"
    echo "== test_vllm_service_ready_after_validation (coder)"
    apply_rgd "$REC/inference/vllm-service/rgd.yaml"
    # The dev cluster does not serve autoscaling/v2 (and a CRD cannot add a
    # group without a dot), so coder runs without its HorizontalPodAutoscaler.
    doc "$REC/inference/vllm-service/instance.yaml" 1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); del d["spec"]["autoscaling"]; print(json.dumps(d))' |
        kubectl apply -f - >/dev/null || fail "apply coder"

    if wait_ready inferencestack qwen llm-d 60; then
        check_validated inferencestack qwen llm-d "$passed"
        check_children "$d" qwen
        gated_after /apis/apps/v1/deployments qwen-vllm-decode llm-d qwen
        expect_eq "qwen: status.pool and route" \
            "$(jp inferencestack qwen llm-d '{.status.pool}/{.status.route}')" "qwen/qwen"
        expect_eq "qwen: status.resources lists every node of the graph" \
            "$(jp inferencestack qwen llm-d '{.status.resources[*].id}' | tr ' ' '\n' | sort -u | tr '\n' ' ')" \
            "$(python3 -c 'import sys,yaml; print(" ".join(sorted({r["id"] for r in yaml.safe_load(open(sys.argv[1]))["spec"]["resources"]})) + " ")' "$d/rgd.yaml")"
    fi
    if wait_ready kservellm qwen-kserve serving 60; then
        check_validated kservellm qwen-kserve serving "$passed"
        check_children "$REC/inference/kserve" qwen-kserve
        gated_after /apis/serving.kserve.io/v1alpha2/llminferenceservices qwen-kserve serving \
            qwen-kserve
        expect_eq "qwen-kserve: the service carries the validated accelerator" \
            "$(kubectl get llminferenceservice qwen-kserve -n serving \
                -o 'jsonpath={.metadata.annotations.inference\.kiln\.dev/validated-accelerator}')" \
            "h100-sxm"
    fi
    if wait_ready vllmservice coder models 60; then
        check_validated vllmservice coder models "$passed"
        CHILD_SKIP=HorizontalPodAutoscaler check_children "$REC/inference/vllm-service" coder
        expect_eq "coder: without autoscaling the Deployment sets replicas" \
            "$(kubectl get deploy coder -n models -o jsonpath='{.spec.replicas}')" "2"
        gated_after /apis/apps/v1/deployments coder models coder
    fi

    echo "== test_inference_stack_deleted_in_reverse_order"
    kubectl delete inferencestack qwen -n llm-d --timeout=60s >/dev/null || fail "delete qwen"
    local left
    left=$(kubectl get deployments,services,configmaps,serviceaccounts,roles,rolebindings,jobs,httproutes,inferencepools \
        -n llm-d -l kiln.dev/instance-name=qwen -o name 2>&1)
    expect_eq "qwen: every child is gone" "$left" ""
    if out=$(deleted_in_order llm-d qwen:/apis/gateway.networking.k8s.io/v1/httproutes \
        qwen:/apis/inference.networking.k8s.io/v1/inferencepools qwen-epp:/apis/apps/v1/deployments); then
        echo "ok: qwen deleted in reverse dependency order: $out"
    else
        fail "qwen: deletion order: $out"
    fi
}

case_h200() {
    inference_setup "h200x8:2"
    local passed="kiln-gpu-h200x8-0=passed/true kiln-gpu-h200x8-1=passed/true "
    namespaces llm-d
    hf_token llm-d
    local d="$REC/inference/inference-stack"
    apply_rgd "$d/rgd.yaml"
    apply_rgd "$REC/inference/pd-disaggregation/rgd.yaml"
    apply_rgd "$REC/inference/wide-ep/rgd.yaml"

    echo "== test_inference_stack_pvc_cache_and_pod_monitor (llama)"
    doc "$d/instance.yaml" 1 | kubectl apply -f - >/dev/null || fail "apply llama"
    echo "== test_pd_stack_ready_after_validation"
    apply "$REC/inference/pd-disaggregation/instance.yaml"
    echo "== test_wide_ep_stack_ready_after_validation"
    apply "$REC/inference/wide-ep/instance.yaml"

    # The claim is missing: the model servers wait for it, named in the status.
    poll_eq 30 "True" cond inferencestack llama llm-d Validated status ||
        fail "llama: not validated: $(cond inferencestack llama llm-d Validated message)"
    sleep 1
    expect_eq "llama: no model server without its claim" \
        "$(kubectl get deploy llama-vllm-decode -n llm-d -o name 2>/dev/null)" ""
    expect_match "llama: the status names the missing claim" \
        "$(kubectl get inferencestack llama -n llm-d -o jsonpath='{.status.conditions}')" \
        'model-pvc'
    expect_eq "llama: not Ready without its claim" \
        "$(cond inferencestack llama llm-d Ready status)" "False"
    apply "$d/observed/model-pvc.yaml"

    if wait_ready inferencestack llama llm-d 60; then
        check_validated inferencestack llama llm-d "$passed"
        check_children "$d" llama
        gated_after /apis/apps/v1/deployments llama-vllm-decode llm-d llama
    fi
    if wait_ready pdstack gpt-oss llm-d 60; then
        check_validated pdstack gpt-oss llm-d "$passed"
        check_children "$REC/inference/pd-disaggregation" gpt-oss
        gated_after /apis/apps/v1/deployments gpt-oss-vllm-prefill llm-d gpt-oss
        gated_after /apis/apps/v1/deployments gpt-oss-vllm-decode llm-d gpt-oss
    fi
    if wait_ready wideepstack deepseek llm-d 60; then
        check_validated wideepstack deepseek llm-d "$passed"
        check_children "$REC/inference/wide-ep" deepseek
        gated_after /apis/leaderworkerset.x-k8s.io/v1/leaderworkersets deepseek-prefill llm-d deepseek
        gated_after /apis/leaderworkerset.x-k8s.io/v1/leaderworkersets deepseek-decode llm-d deepseek
    fi
}

case_l40s() {
    inference_setup "l40sx8:1"
    namespaces models
    hf_token models
    echo "== test_vllm_service_ready_after_validation (chat)"
    apply_rgd "$REC/inference/vllm-service/rgd.yaml"
    doc "$REC/inference/vllm-service/instance.yaml" 0 | kubectl apply -f - >/dev/null ||
        fail "apply chat"
    if wait_ready vllmservice chat models 60; then
        check_validated vllmservice chat models "kiln-gpu-l40sx8-0=passed/true "
        check_children "$REC/inference/vllm-service" chat
        gated_after /apis/apps/v1/deployments chat models chat
        expect_eq "chat: status.readyReplicas" \
            "$(jp vllmservice chat models '{.status.readyReplicas}')" "1"
    fi
}

case_slow() {
    inference_setup "h100x8:1:slow"
    namespaces llm-d
    hf_token llm-d
    echo "== test_inference_stack_on_slow_card_is_not_ready"
    local d="$REC/inference/inference-stack"
    apply_rgd "$d/rgd.yaml"
    doc "$d/instance.yaml" 0 | kubectl apply -f - >/dev/null || fail "apply qwen"
    # Validated is False while the Jobs run too: wait for the verdict.
    poll_eq 60 "Failed" cond inferencestack qwen llm-d Validated reason ||
        fail "slow card: Validated $(cond inferencestack qwen llm-d Validated reason)"
    local msg
    msg=$(cond inferencestack qwen llm-d Validated message)
    echo "slow card: $msg"
    expect_match "the message names node, check, measured and expected" "$msg" \
        '^gpuCheck: (hbm-bandwidth|gemm) on node kiln-gpu-h100x8-slow-0 GPU 7: [a-zA-Z0-9]+ measured [0-9.]+ [A-Za-z/]+, expected >= [0-9.]+ '
    expect_eq "Validated reason" "$(cond inferencestack qwen llm-d Validated reason)" "Failed"
    expect_eq "Ready" "$(cond inferencestack qwen llm-d Ready status)" "False"
    expect_eq "failing checks shown as fail" \
        "$(jp inferencestack qwen llm-d '{range .status.validation.gpuCheck.nodes[0].checks[*]}{.name}={.result} {end}')" \
        "device=pass memory=pass hbm-bandwidth=fail gemm=fail pcie=pass p2p=pass "
    # Give the controller time to act on everything that does not wait for
    # validation (the endpoint picker), then check the gate held.
    poll_eq 20 "deployment.apps/qwen-epp" kubectl get deploy qwen-epp -n llm-d -o name ||
        fail "the endpoint picker, which does not wait for validation, was not created"
    sleep 1
    expect_eq "the vLLM Deployment was never created" \
        "$(kubectl get deploy qwen-vllm-decode -n llm-d -o name 2>/dev/null)" ""
    expect_eq "still not Ready" "$(cond inferencestack qwen llm-d Ready status)" "False"
}

# --- ClusterRuntime: Argo CD Applications created wave by wave.
apps() {
    kubectl get applications.argoproj.io -n argocd \
        -o 'jsonpath={range .items[*]}{.metadata.labels.runtime\.kiln\.dev/component}{"\n"}{end}' |
        sort | tr '\n' ' '
}
# healthy COMPONENT...: what Argo CD writes once it synced an Application and
# its resources are healthy (a plain patch: Application has no status subresource).
healthy() {
    local c
    for c in "$@"; do
        kubectl patch applications.argoproj.io "gpu-runtime-$c" -n argocd --type=merge \
            -p '{"status":{"health":{"status":"Healthy"},"sync":{"status":"Synced"}}}' \
            >/dev/null || fail "mark $c healthy"
    done
}
# wave WHAT WANT: the Applications become exactly WANT and stay so for 2 s
# (long enough for the controller to act on the last change).
wave() {
    if ! poll_eq 30 "$2" apps; then
        fail "$1: Applications are [$(apps)], expected [$2]"
        return
    fi
    sleep 2
    expect_eq "$1" "$(apps)" "$2"
}
gw() { kubectl get gateways.gateway.networking.k8s.io -A -o name 2>/dev/null; }
vjobs() {
    kubectl get jobs -n default -l kiln.dev/instance-name=gpu-runtime \
        -o 'jsonpath={range .items[*]}{.metadata.labels.kiln\.dev/validation-node}{"\n"}{end}' |
        sort | tr '\n' ' '
}

case_runtime() {
    start_cluster "h100x8:2"
    install_operator_crds argocd gateway-api
    namespaces argocd
    echo "== test_cluster_runtime_deploys_in_dependency_order"
    apply_rgd "$REC/runtime/cluster-runtime.rgd.yaml"
    apply "$REC/runtime/examples/eks-h100-inference-argocd.instance.yaml"

    local w1="cert-manager gateway-api-crds kai-scheduler kube-prometheus-stack lws "
    wave "first wave: the components without dependencies" "$w1"
    expect_eq "no Gateway before kgateway" "$(gw)" ""
    expect_eq "no validation before the GPU operator" "$(vjobs)" ""
    expect_eq "not Ready" "$(kubectl get clusterruntime gpu-runtime \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" "False"

    healthy gateway-api-crds
    wave "the Gateway API CRDs healthy: their dependents, not the GPU operator" \
        "cert-manager gateway-api-crds inference-extension-crds kai-scheduler kgateway-crds kube-prometheus-stack lws "
    healthy cert-manager
    wave "cert-manager alone is not enough for the GPU operator" \
        "cert-manager gateway-api-crds inference-extension-crds kai-scheduler kgateway-crds kube-prometheus-stack lws "
    healthy kube-prometheus-stack
    local w2="cert-manager gateway-api-crds gpu-operator inference-extension-crds kai-scheduler kgateway-crds kube-prometheus-stack lws "
    wave "cert-manager and kube-prometheus-stack healthy: the GPU operator" "$w2"
    healthy gpu-operator
    local w3="cert-manager gateway-api-crds gpu-operator inference-extension-crds kai-scheduler kgateway-crds kube-prometheus-stack lws nvidia-dra-driver-gpu "
    wave "the GPU operator healthy: the DRA driver, not kgateway" "$w3"
    expect_eq "no validation before the DRA driver" "$(vjobs)" ""
    healthy kgateway-crds inference-extension-crds
    local w4="cert-manager gateway-api-crds gpu-operator inference-extension-crds kai-scheduler kgateway kgateway-crds kube-prometheus-stack lws nvidia-dra-driver-gpu "
    wave "both CRD bundles healthy: kgateway" "$w4"
    expect_eq "no Gateway before kgateway is healthy" "$(gw)" ""
    # Argo CD creates the namespace (CreateNamespace=true) when it syncs kgateway.
    namespaces kgateway-system
    healthy kgateway
    poll_eq 30 "gateway.gateway.networking.k8s.io/inference-gateway" gw ||
        fail "the Gateway did not follow kgateway: [$(gw)]"
    expect_eq "the Gateway is in kgateway's namespace" \
        "$(kubectl get gateways.gateway.networking.k8s.io -n kgateway-system -o name)" \
        "gateway.gateway.networking.k8s.io/inference-gateway"
    expect_eq "still no validation" "$(vjobs)" ""
    healthy nvidia-dra-driver-gpu
    if poll_eq 30 "kiln-gpu-h100x8-0 kiln-gpu-h100x8-1 " vjobs; then
        echo "ok: one validation Job per GPU node, in the controller's namespace (default)"
    else
        fail "validation Jobs: [$(vjobs)]"
    fi
    poll_eq 30 "True" kubectl get clusterruntime gpu-runtime \
        -o 'jsonpath={.status.conditions[?(@.type=="Validated")].status}' ||
        fail "not Validated: $(kubectl get clusterruntime gpu-runtime -o jsonpath='{.status.conditions}')"
    expect_eq "validation passed on both nodes" \
        "$(kubectl get clusterruntime gpu-runtime -o 'jsonpath={range .status.validation.gpuCheck.nodes[*]}{.name}={.result} {end}')" \
        "kiln-gpu-h100x8-0=passed kiln-gpu-h100x8-1=passed "
    expect_eq "not Ready while components are unhealthy and the Gateway unprogrammed" \
        "$(kubectl get clusterruntime gpu-runtime \
            -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" "False"
    kubectl patch gateways.gateway.networking.k8s.io inference-gateway -n kgateway-system \
        --subresource=status --type=merge -p '{"status":{"conditions":[
        {"type":"Accepted","status":"True","reason":"Accepted","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"},
        {"type":"Programmed","status":"True","reason":"Programmed","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}' \
        >/dev/null || fail "Gateway status"
    healthy kai-scheduler lws
    local t0=$SECONDS
    if kubectl wait --for=condition=Ready clusterruntime/gpu-runtime --timeout=60s >/dev/null; then
        echo "ok: clusterruntime/gpu-runtime Ready after $((SECONDS - t0)) s"
    else
        fail "clusterruntime not Ready: $(kubectl get clusterruntime gpu-runtime -o jsonpath='{.status}')"
    fi
    check_children_runtime
}

# Every object of the golden render exists.
check_children_runtime() {
    local f="$REC/runtime/examples/eks-h100-inference-argocd.expected.yaml" missing
    missing=$(python3 - "$f" <<'EOF'
import subprocess, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d:
        continue
    md = d["metadata"]
    res = d["kind"].lower() + "s." + d["apiVersion"].split("/")[0]
    r = subprocess.run(["kubectl", "get", res, md["name"], "-n", md["namespace"], "-o", "name"],
                       capture_output=True, text=True)
    if r.returncode:
        print(d["kind"], md["name"])
EOF
)
    expect_eq "every object of the golden render exists" "$missing" ""
}

case "$CASE" in
h100 | h200 | l40s | slow | runtime) "case_$CASE" ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
echo "case $CASE took $((SECONDS - T0)) s"
finish
