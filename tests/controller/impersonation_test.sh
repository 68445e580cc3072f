#!/usr/bin/env bash
# tests/controller/impersonation_test.sh: an RGD's spec.serviceAccountName.
# The controller writes that RGD's children as the ServiceAccount, so the
# dev cluster's RBAC decides what it may create; its own work (status,
# finalizers) stays under its own identity.
# Env: KILN (the kiln binary), DEVCLUSTER (kiln-devcluster), KILN_SOURCE_DIR.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KILN_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
FIX="$HERE/fixtures"
# shellcheck source=../devcluster/lib.sh
. "$SRC/tests/devcluster/lib.sh"
# shellcheck source=ctl.sh
. "$HERE/ctl.sh"

cond() { kubectl get teamapp "$1" -n team-a -o "jsonpath={.status.conditions[?(@.type==\"$2\")].$3}" 2>/dev/null; }
exists() { kubectl get "$@" -o name 2>/dev/null; }

start_server
start_kiln_controller

kubectl apply -f - >/dev/null <<'YAML' || fail "setup"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: apps, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer-apps, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: apps}
subjects: [{kind: ServiceAccount, name: deployer, namespace: team-a}]
YAML

poll_eq 20 "True" kubectl get crd resourcegraphdefinitions.kiln.dev \
    -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' ||
    fail "kiln CRDs not installed"
kubectl apply -f "$FIX/team-app.yaml" >/dev/null || fail "RGD apply"
kubectl wait --for=condition=Ready rgd/team-app --timeout=30s >/dev/null || fail "RGD not Ready"

echo "== test_children_written_as_the_service_account"
printf 'apiVersion: kiln.dev/v1alpha1\nkind: TeamApp\nmetadata: {name: one, namespace: team-a}\nspec: {}\n' |
    kubectl apply -f - >/dev/null || fail "instance apply"
poll_eq 30 "True" cond one Stalled status || fail "not Stalled: $(cond one Ready message)"
expect_eq "what the account may write exists" "$(exists configmap one-cfg -n team-a)" \
    "configmap/one-cfg"
expect_eq "what it may not does not" "$(exists secret one-secret -n team-a)" ""
expect_eq "the refusal, in the account's name" "$(cond one Stalled message)" \
    'secret: secrets "one-secret" is forbidden: User "system:serviceaccount:team-a:deployer" cannot patch resource "secrets" in API group "" in the namespace "team-a"'
expect_eq "Ready" "$(cond one Ready status)/$(cond one Ready reason)" "False/Stalled"
expect_eq "kiln's own writes are its own: finalizer" \
    "$(kubectl get teamapp one -n team-a -o 'jsonpath={.metadata.finalizers}')" '["kiln.dev/finalizer"]'

echo "== test_a_granted_role_is_picked_up"
kubectl apply -f - >/dev/null <<'YAML' || fail "role update"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: apps, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get, list, watch, create, update, patch, delete]
YAML
if kubectl wait --for=condition=Ready teamapp/one -n team-a --timeout=60s >/dev/null; then
    echo "ok: Ready once the Role allows secrets"
else
    fail "not Ready after the grant: $(cond one Ready message)"
fi
expect_eq "the secret now exists" "$(exists secret one-secret -n team-a)" "secret/one-secret"

echo "== test_deletion_as_the_service_account"
kubectl delete teamapp one -n team-a --timeout=60s >/dev/null || fail "delete"
expect_eq "children deleted" "$(exists configmap one-cfg -n team-a)$(exists secret one-secret -n team-a)" ""

echo "== test_another_namespace_is_not_granted"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: kiln.dev/v1alpha1
kind: TeamApp
metadata: {name: two, namespace: team-b}
spec: {}
YAML
poll_eq 30 "True" kubectl get teamapp two -n team-b \
    -o 'jsonpath={.status.conditions[?(@.type=="Stalled")].status}' ||
    fail "team-b instance not Stalled"
expect_match "team-b's account has no rights" \
    "$(kubectl get teamapp two -n team-b -o 'jsonpath={.status.conditions[?(@.type=="Stalled")].message}')" \
    'User "system:serviceaccount:team-b:deployer" cannot patch resource "configmaps" in API group "" in the namespace "team-b"'
expect_eq "nothing created in team-b" "$(exists configmap two-cfg -n team-b)" ""

stop_kiln_controller
finish
