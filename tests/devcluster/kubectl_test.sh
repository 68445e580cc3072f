#!/usr/bin/env bash
# tests/devcluster/kubectl_test.sh: the dev cluster driven by real kubectl
# 1.27 (oldest), 1.32 (the default) and 1.33 (newest).
# Usage: kubectl_test.sh <dev cluster command...>
DEVCLUSTER="$*"
. "$(dirname "$0")/lib.sh"

start_server

run_suite() {
    local v=$1
    local K="$KUBECTL_DIR/kubectl.1.$v"
    local ns="t$v"
    if [ ! -x "$K" ]; then
        fail "kubectl 1.$v not installed at $K"
        return
    fi
    echo "== kubectl 1.$v"
    export KUBECACHEDIR="$WORK/cache-$v"
    local out
    out=$($K create namespace "$ns" --dry-run=client -o yaml | $K apply -f - 2>&1)
    expect_eq "1.$v namespace apply" "$out" "namespace/$ns created"

    # --- client-side apply of a ConfigMap: created, unchanged, configured
    cat >"$WORK/cm.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: cm1, namespace: $ns, labels: {app: a}}
data: {k: v1}
YAML
    expect_eq "1.$v apply cm" "$($K apply -f "$WORK/cm.yaml" 2>&1)" "configmap/cm1 created"
    expect_eq "1.$v re-apply cm" "$($K apply -f "$WORK/cm.yaml" 2>&1)" "configmap/cm1 unchanged"
    sed -i 's/k: v1/k: v2/' "$WORK/cm.yaml"
    expect_eq "1.$v apply changed cm" "$($K apply -f "$WORK/cm.yaml" 2>&1)" "configmap/cm1 configured"
    expect_eq "1.$v get jsonpath" "$($K -n "$ns" get cm cm1 -o jsonpath='{.data.k}')" "v2"
    out=$($K -n "$ns" get cm cm1 -o json)
    expect_eq "1.$v get -o json kind" "$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["kind"], d["apiVersion"], d["metadata"]["labels"]["app"])')" "ConfigMap v1 a"
    expect_match "1.$v get -o yaml" "$($K -n "$ns" get cm cm1 -o yaml)" "^apiVersion: v1"
    $K -n "$ns" create configmap other --from-literal=x=y --dry-run=client -o yaml | $K apply -f - >/dev/null
    expect_eq "1.$v get -l" "$($K -n "$ns" get cm -l app=a -o name)" "configmap/cm1"
    expect_eq "1.$v get -l notin" "$($K -n "$ns" get cm -l 'app notin (a)' -o name)" "configmap/other"

    # --- Deployment: apply, wait Available, strategic merge, scale, label, annotate
    cat >"$WORK/deploy.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $ns, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx:1.27
        env: [{name: A, value: "1"}]
        ports: [{containerPort: 80}]
YAML
    expect_eq "1.$v apply deployment" "$($K apply -f "$WORK/deploy.yaml" 2>&1)" "deployment.apps/web created"
    expect_eq "1.$v wait Available" "$($K -n "$ns" wait --for=condition=Available deploy/web --timeout=10s 2>&1)" "deployment.apps/web condition met"
    expect_eq "1.$v deployment status" "$($K -n "$ns" get deploy web -o jsonpath='{.status.readyReplicas}/{.status.availableReplicas}/{.status.observedGeneration}/{.metadata.generation}/{.metadata.labels.kiln\.dev/simulated}')" "2/2/1/1/true"
    sed -i 's/nginx:1.27/nginx:1.28/' "$WORK/deploy.yaml"
    expect_eq "1.$v re-apply deployment" "$($K apply -f "$WORK/deploy.yaml" 2>&1)" "deployment.apps/web configured"
    expect_eq "1.$v apply keeps env (SMP by name)" "$($K -n "$ns" get deploy web -o jsonpath='{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].name} {.metadata.generation}')" "nginx:1.28 A 2"
    expect_eq "1.$v patch strategic" "$($K -n "$ns" patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}' 2>&1)" "deployment.apps/web patched"
    expect_eq "1.$v strategic merged containers" "$($K -n "$ns" get deploy web -o jsonpath='{.spec.template.spec.containers[*].name}')" "c side"
    expect_eq "1.$v patch json" "$($K -n "$ns" patch deploy web --type json -p '[{"op":"remove","path":"/spec/template/spec/containers/1"}]' 2>&1)" "deployment.apps/web patched"
    expect_eq "1.$v patch merge" "$($K -n "$ns" patch deploy web --type merge -p '{"spec":{"paused":false}}' 2>&1)" "deployment.apps/web patched"
    expect_eq "1.$v patch no change" "$($K -n "$ns" patch deploy web --type merge -p '{"spec":{"paused":false}}' 2>&1)" "deployment.apps/web patched (no change)"
    out=$($K -n "$ns" patch deploy web --type json -p '[{"op":"replace","path":"/spec/nope/x","value":1}]' 2>&1)
    expect_match "1.$v bad json patch is 422" "$out" "The request is invalid"
    expect_eq "1.$v scale" "$($K -n "$ns" scale deploy web --replicas=3 2>&1)" "deployment.apps/web scaled"
    expect_eq "1.$v label" "$($K -n "$ns" label deploy web tier=front 2>&1)" "deployment.apps/web labeled"
    expect_match "1.$v annotate" "$($K -n "$ns" annotate deploy web note=hi 2>&1)" "^deployment.apps/web annotated?$"
    $K -n "$ns" wait --for=jsonpath='{.status.readyReplicas}'=3 deploy/web --timeout=10s >/dev/null 2>&1
    expect_eq "1.$v after scale/label/annotate" "$($K -n "$ns" get deploy web -o jsonpath='{.spec.replicas} {.status.readyReplicas} {.metadata.labels.tier} {.metadata.annotations.note}')" "3 3 front hi"

    # --- server-side apply
    cat >"$WORK/ssa.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa, namespace: $ns}
data: {a: "1"}
YAML
    expect_eq "1.$v apply --server-side create" "$($K apply --server-side -f "$WORK/ssa.yaml" 2>&1)" "configmap/ssa serverside-applied"
    expect_eq "1.$v managedFields" "$($K -n "$ns" get cm ssa -o jsonpath='{.metadata.managedFields[0].manager}/{.metadata.managedFields[0].operation}' --show-managed-fields)" "kubectl/Apply"
    out=$($K apply --server-side --field-manager=other -f "$WORK/ssa.yaml" 2>&1)
    expect_eq "1.$v SSA same value shares ownership" "$out" "configmap/ssa serverside-applied"
    sed -i 's/a: "1"/a: "2"/' "$WORK/ssa.yaml"
    out=$($K apply --server-side --field-manager=third -f "$WORK/ssa.yaml" 2>&1)
    expect_match "1.$v SSA conflict" "$out" "conflicts? with \"(kubectl|other)\""
    expect_eq "1.$v SSA force" "$($K apply --server-side --force-conflicts --field-manager=third -f "$WORK/ssa.yaml" 2>&1)" "configmap/ssa serverside-applied"
    expect_eq "1.$v SSA value" "$($K -n "$ns" get cm ssa -o jsonpath='{.data.a}')" "2"

    # --- Pod and Job readiness
    $K -n "$ns" run p1 --image=busybox --restart=Never >/dev/null 2>&1
    expect_eq "1.$v wait pod Ready" "$($K -n "$ns" wait --for=condition=Ready pod/p1 --timeout=10s 2>&1)" "pod/p1 condition met"
    expect_eq "1.$v pod status" "$($K -n "$ns" get pod p1 -o jsonpath='{.status.phase} {.spec.nodeName}')" "Running kiln-dev"
    cat >"$WORK/job.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: j1, namespace: $ns}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
YAML
    $K apply -f "$WORK/job.yaml" >/dev/null
    expect_eq "1.$v wait job complete" "$($K -n "$ns" wait --for=condition=Complete job/j1 --timeout=10s 2>&1)" "job.batch/j1 condition met"
    expect_eq "1.$v job succeeded" "$($K -n "$ns" get job j1 -o jsonpath='{.status.succeeded}')" "2"

    # --- CRD, served at once; custom resources with defaults, 422, printer columns
    cat >"$WORK/crd.yaml" <<YAML
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets$v.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets$v, singular: gadget$v, kind: Gadget$v, shortNames: [gd$v]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, default: blue}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
YAML
    cat >"$WORK/cr.yaml" <<YAML
apiVersion: example.com/v1
kind: Gadget$v
metadata: {name: g1, namespace: $ns}
spec: {size: 3, junk: 1}
YAML
    local t0 t1
    t0=$(date +%s%N)
    expect_eq "1.$v apply CRD" "$($K apply -f "$WORK/crd.yaml" 2>&1)" "customresourcedefinition.apiextensions.k8s.io/gadgets$v.example.com created"
    out=$($K apply -f "$WORK/cr.yaml" 2>&1)
    t1=$(date +%s%N)
    # fieldValidation=Strict: unknown fields are refused, as the real server does.
    expect_match "1.$v strict unknown field" "$out" 'unknown field "spec.junk"'
    sed -i 's/^spec: .*/spec: {size: 3}/' "$WORK/cr.yaml"
    out=$($K apply -f "$WORK/cr.yaml" 2>&1)
    t1=$(date +%s%N)
    expect_eq "1.$v apply CR right after CRD" "$out" "gadget$v.example.com/g1 created"
    if [ $(((t1 - t0) / 1000000)) -gt 3000 ]; then fail "1.$v CRD to CR took $(((t1 - t0) / 1000000)) ms"; fi
    expect_eq "1.$v CR default" "$($K -n "$ns" get gd$v g1 -o jsonpath='{.spec.color} {.metadata.generation}')" "blue 1"
    out=$($K -n "$ns" get gadgets$v 2>&1)
    expect_match "1.$v printer columns header" "$(printf '%s' "$out" | head -1)" "^NAME +SIZE +READY$"
    # A CRD's declared columns are the whole table: no Age unless it declares one.
    expect_match "1.$v printer columns row" "$(printf '%s' "$out" | tail -1)" "^g1 +3 *$"
    out=$($K -n "$ns" patch gd$v g1 --subresource=status --type merge -p '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}' 2>&1)
    if [ "$v" = 27 ]; then
        # kubectl 1.27 has no --subresource for patch; write status over the API.
        curl -sf -X PATCH -H 'Content-Type: application/merge-patch+json' \
            -d '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}' \
            "$URL/apis/example.com/v1/namespaces/$ns/gadgets$v/g1/status" >/dev/null
    else
        expect_eq "1.$v patch status" "$out" "gadget$v.example.com/g1 patched"
    fi
    expect_eq "1.$v wait CR Ready" "$($K -n "$ns" wait --for=condition=Ready gd$v/g1 --timeout=10s 2>&1)" "gadget$v.example.com/g1 condition met"
    expect_match "1.$v printer column Ready" "$($K -n "$ns" get gd$v g1 | tail -1)" "^g1 +3 +True$"
    expect_eq "1.$v status write kept generation" "$($K -n "$ns" get gd$v g1 -o jsonpath='{.metadata.generation}')" "1"
    cat >"$WORK/bad.yaml" <<YAML
apiVersion: example.com/v1
kind: Gadget$v
metadata: {name: bad, namespace: $ns}
spec: {size: 0}
YAML
    out=$($K apply -f "$WORK/bad.yaml" 2>&1)
    expect_match "1.$v invalid CR is 422 naming the field" "$out" "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
    expect_eq "1.$v CR merge patch" "$($K -n "$ns" patch gd$v g1 --type merge -p '{"spec":{"size":4}}' 2>&1)" "gadget$v.example.com/g1 patched"
    expect_eq "1.$v CR generation bump" "$($K -n "$ns" get gd$v g1 -o jsonpath='{.metadata.generation}')" "2"
    out=$($K apply --server-side -f "$WORK/cr.yaml" 2>&1)
    expect_match "1.$v SSA on CR conflicts with the patch" "$out" '^error: Apply failed with 1 conflict: conflict with "kubectl-patch" using example.com/v1 at [0-9TZ:-]+: .spec.size'
    expect_eq "1.$v SSA on CR forced" "$($K apply --server-side --force-conflicts -f "$WORK/cr.yaml" 2>&1)" "gadget$v.example.com/g1 serverside-applied"
    expect_eq "1.$v SSA on CR value" "$($K -n "$ns" get gd$v g1 -o jsonpath='{.spec.size}')" "3"

    # --- get -w sees a create
    $K -n "$ns" get cm -w -o name >"$WORK/watch-$v.out" 2>&1 &
    local wpid=$!
    for _ in $(seq 1 100); do grep -q configmap/cm1 "$WORK/watch-$v.out" 2>/dev/null && break; sleep 0.05; done
    $K -n "$ns" create configmap watched --dry-run=client -o yaml | $K apply -f - >/dev/null
    for _ in $(seq 1 100); do grep -q configmap/watched "$WORK/watch-$v.out" && break; sleep 0.05; done
    kill "$wpid" 2>/dev/null
    wait "$wpid" 2>/dev/null
    expect_match "1.$v get -w" "$(cat "$WORK/watch-$v.out")" "configmap/watched"

    # --- delete --wait holds for a finalizer; deletionTimestamp in between
    cat >"$WORK/fin.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: fin, namespace: $ns, finalizers: [example.com/hold]}
YAML
    $K apply -f "$WORK/fin.yaml" >/dev/null
    $K -n "$ns" delete cm fin --timeout=20s >"$WORK/del-$v.out" 2>&1 &
    local dpid=$!
    for _ in $(seq 1 100); do
        [ -n "$($K -n "$ns" get cm fin -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null)" ] && break
        sleep 0.05
    done
    expect_match "1.$v deletionTimestamp set" "$($K -n "$ns" get cm fin -o jsonpath='{.metadata.deletionTimestamp}')" "^20[0-9-]+T"
    $K -n "$ns" patch cm fin --type json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
    wait "$dpid"
    expect_eq "1.$v delete --wait finished" "$(cat "$WORK/del-$v.out")" 'configmap "fin" deleted'
    expect_match "1.$v gone" "$($K -n "$ns" get cm fin 2>&1)" 'NotFound.*configmaps "fin" not found'

    # --- ownerReference garbage collection
    local uid
    uid=$($K -n "$ns" get cm cm1 -o jsonpath='{.metadata.uid}')
    cat >"$WORK/dep.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: dependent
  namespace: $ns
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: cm1, uid: "$uid"}]
YAML
    $K apply -f "$WORK/dep.yaml" >/dev/null
    expect_eq "1.$v delete owner" "$($K -n "$ns" delete cm cm1 2>&1)" 'configmap "cm1" deleted'
    for _ in $(seq 1 100); do $K -n "$ns" get cm dependent >/dev/null 2>&1 || break; sleep 0.05; done
    expect_match "1.$v dependent collected" "$($K -n "$ns" get cm dependent 2>&1)" "NotFound"

    # --- delete the CRD (its objects go too) and the namespace (its contents go too)
    expect_eq "1.$v delete CRD" "$($K delete -f "$WORK/crd.yaml" 2>&1)" "customresourcedefinition.apiextensions.k8s.io \"gadgets$v.example.com\" deleted"
    expect_eq "1.$v delete namespace" "$($K delete ns "$ns" --timeout=20s 2>&1)" "namespace \"$ns\" deleted"
    expect_eq "1.$v namespace contents gone" "$(curl -s "$URL/api/v1/namespaces/$ns/configmaps" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" "0"
}

for v in 27 32 33; do
    run_suite "$v"
done

# --- HTTPS with a bearer token, and a simulated kubelet with a delay
stop_server
start_server --tls --kubelet-delay 400
K="$KUBECTL_DIR/kubectl.1.33"
export KUBECACHEDIR="$WORK/cache-tls"
expect_match "https url" "$URL" "^https://127.0.0.1:[0-9]+$"
expect_match "kubeconfig has a CA and a token" "$(cat "$KUBECONFIG")" "certificate-authority-data: [A-Za-z0-9+/=]+"
expect_eq "tls get ns" "$($K get ns default -o name 2>&1)" "namespace/default"
sed 's/token: .*/token: wrong/' "$KUBECONFIG" >"$WORK/bad-token"
expect_eq "wrong token" "$(KUBECONFIG="$WORK/bad-token" $K get ns default 2>&1)" "error: You must be logged in to the server (Unauthorized)"
$K create deployment slow --image=nginx --dry-run=client -o yaml | $K apply -f - >/dev/null
expect_eq "not ready before the delay" "$($K get deploy slow -o jsonpath='{.status.readyReplicas}')" ""
expect_eq "ready after the delay" "$($K wait --for=condition=Available deploy/slow --timeout=10s 2>&1)" "deployment.apps/slow condition met"

# --- kubectl version / the dispatcher picks 1.32 from /version
export KUBECACHEDIR="$WORK/cache-version"
expect_match "kubectl version" "$("$KUBECTL_DIR/kubectl.1.33" version 2>&1)" "Server Version: v1.32.0"

finish
