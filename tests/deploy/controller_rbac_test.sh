#!/usr/bin/env bash
# tests/deploy/controller_rbac_test.sh: the controller, holding only the
# roles deploy/ ships, reconciles the examples (GPU validation included).
# It runs as its ServiceAccount: its kubeconfig impersonates
# system:serviceaccount:kiln-system:kiln-controller, and the dev cluster
# enforces RBAC for impersonated requests, so any verb the shipped roles miss
# is a 403 here. Then the children role is taken away, to show it is RBAC
# that allowed the rest.
# Env: KILN, DEVCLUSTER, KILN_SOURCE_DIR.
set -u
SRC=${KILN_SOURCE_DIR:?}
# shellcheck source=../devcluster/lib.sh
. "$SRC/tests/devcluster/lib.sh"
# shellcheck source=../controller/ctl.sh
. "$SRC/tests/controller/ctl.sh"

start_server --simulate-gpus h100x8:2
kubectl apply -f "$SRC/deploy/kiln.yaml" >/dev/null || fail "apply deploy/kiln.yaml"
poll_eq 20 "True" kubectl get crd resourcegraphdefinitions.kiln.dev \
    -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' ||
    fail "kiln CRDs not installed"

# The controller's kubeconfig: the same server, as its ServiceAccount.
/usr/bin/python3 - "$KUBECONFIG" "$WORK/sa.kubeconfig" <<'PY' || fail "kubeconfig"
import sys, yaml
kc = yaml.safe_load(open(sys.argv[1]))
for u in kc["users"]:
    u["user"]["as"] = "system:serviceaccount:kiln-system:kiln-controller"
open(sys.argv[2], "w").write(yaml.safe_dump(kc))
PY
expect_match "the controller's kubeconfig is its ServiceAccount" \
    "$(KUBECONFIG="$WORK/sa.kubeconfig" kubectl delete namespace kube-system 2>&1)" \
    'User "system:serviceaccount:kiln-system:kiln-controller" cannot delete resource "namespaces"'
"$KILN" controller --kubeconfig "$WORK/sa.kubeconfig" --workers 2 --log-format json \
    --log-level info --metrics-bind-address 0 --health-probe-bind-address 0 \
    --leader-elect --leader-election-namespace kiln-system 2>>"$WORK/ctl.err" &
CTL_PID=$!

echo "== test_shipped_roles_reconcile_the_examples"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: models}
YAML
kubectl apply -f "$SRC/examples/web-app/rgd.yaml" -f "$SRC/examples/gpu-service/rgd.yaml" >/dev/null
kubectl wait --for=condition=Ready rgd/web-app rgd/gpu-service --timeout=30s >/dev/null ||
    fail "RGDs not Ready: $(kubectl get rgd -o 'jsonpath={range .items[*]}{.metadata.name}: {.status.conditions[?(@.type=="Ready")].message} {end}')"
kubectl apply -f "$SRC/examples/web-app/instance.yaml" -f "$SRC/examples/gpu-service/instance.yaml" >/dev/null
if kubectl wait --for=condition=Ready webapp/shop webapp/docs -n team-a --timeout=60s >/dev/null &&
    kubectl wait --for=condition=Ready gpuservice/qwen -n models --timeout=60s >/dev/null; then
    echo "ok: web-app and gpu-service Ready under the shipped roles"
else
    fail "not Ready under the shipped roles: $(kubectl get gpuservice qwen -n models -o 'jsonpath={.status.conditions[?(@.type=="Ready")].message}')"
fi
expect_eq "validation Jobs ran" \
    "$(kubectl get gpuservice qwen -n models -o 'jsonpath={.status.validation.gpuCheck.phase}')" "Passed"
expect_eq "the Lease is held in kiln-system" \
    "$(kubectl get lease kiln-controller -n kiln-system -o 'jsonpath={.spec.holderIdentity}' | grep -c .)" "1"
expect_eq "no request was refused" "$(grep -c -i forbidden "$WORK/ctl.err")" "0"

echo "== test_without_the_children_role_it_is_refused"
kubectl delete clusterrolebinding kiln-controller-children >/dev/null
printf 'apiVersion: kiln.dev/v1alpha1\nkind: WebApp\nmetadata: {name: late, namespace: team-a}\nspec: {name: late, image: ghcr.io/example/late:1.0}\n' |
    kubectl apply -f - >/dev/null || fail "apply late"
poll_eq 30 "True" kubectl get webapp late -n team-a \
    -o 'jsonpath={.status.conditions[?(@.type=="Stalled")].status}' ||
    fail "late: not Stalled without the children role: $(kubectl get webapp late -n team-a -o 'jsonpath={.status.conditions[?(@.type=="Ready")].message}')"
expect_match "the refusal names kiln's ServiceAccount" \
    "$(kubectl get webapp late -n team-a -o 'jsonpath={.status.conditions[?(@.type=="Stalled")].message}')" \
    'User "system:serviceaccount:kiln-system:kiln-controller" cannot patch resource "deployments" in API group "apps" in the namespace "team-a"'

stop_kiln_controller
finish
