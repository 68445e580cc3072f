#!/usr/bin/env bash
# tests/devcluster/rbac_test.sh: impersonation and RBAC (devcluster/authz.c),
# driven by kubectl --as (1.27, 1.32, 1.33) and curl for the raw answers.
# Usage: rbac_test.sh <dev cluster command...>
DEVCLUSTER="$*"
. "$(dirname "$0")/lib.sh"

start_server --no-kubelet
K="$KUBECTL_DIR/kubectl.1.32"
SA=system:serviceaccount:team-a:deployer
AS="--as=$SA"
FORBID="Error from server (Forbidden)"

# status_of <curl args...>: "<http code> <body>" of one request.
status_of() {
    curl -s -o "$WORK/body" -w '%{http_code}' "$@"
    printf ' %s' "$(cat "$WORK/body")"
}
# field <python expr over d> reads $WORK/body as JSON.
field() {
    /usr/bin/python3 -c "import json,sys; d=json.load(open('$WORK/body')); print($1)"
}

cat >"$WORK/rbac.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-c}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-writer, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, patch, update, delete]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [named]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer-cm, namespace: team-a}
subjects: [{kind: ServiceAccount, name: deployer, namespace: team-a}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-writer}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-reader}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-secrets, namespace: team-b}
subjects: [{kind: ServiceAccount, name: deployer, namespace: team-a}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-creator, namespace: team-c}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-a-sas, namespace: team-c}
subjects: [{kind: Group, name: "system:serviceaccounts:team-a", apiGroup: rbac.authorization.k8s.io}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-creator}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dangling, namespace: team-b}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: gone}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: aggregate}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {example.com/aggregate-to-aggregate: "true"}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-lister, labels: {example.com/aggregate-to-aggregate: "true"}}
rules:
- {apiGroups: [""], resources: [pods], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: carol-aggregate}
subjects: [{kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: aggregate}
YAML
$K apply -f "$WORK/rbac.yaml" >/dev/null || fail "applying the RBAC objects"

cm() { # cm <ns> <name>: a ConfigMap manifest
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: %s}\ndata: {k: v}\n' "$2" "$1"
}
secret() {
    printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\nstringData: {k: v}\n' "$2" "$1"
}

for v in 27 32 33; do
    KV="$KUBECTL_DIR/kubectl.1.$v"
    export KUBECACHEDIR="$WORK/cache-$v"
    expect_eq "1.$v SA creates a ConfigMap in team-a" "$(cm team-a "c$v" | $KV create "$AS" -f - 2>&1)" \
        "configmap/c$v created"
    expect_eq "1.$v SA cannot create a Secret in team-a" "$(secret team-a "s$v" | $KV create "$AS" -f - 2>&1)" \
        "$FORBID: error when creating \"STDIN\": secrets is forbidden: User \"$SA\" cannot create resource \"secrets\" in API group \"\" in the namespace \"team-a\""
done
export KUBECACHEDIR="$WORK/cache"

expect_eq "SA cannot create a ConfigMap in team-b" "$(cm team-b x | $K create "$AS" -f - 2>&1)" \
    "$FORBID: error when creating \"STDIN\": configmaps is forbidden: User \"$SA\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"team-b\""
expect_eq "server-side apply as the SA (patch verb)" \
    "$(cm team-a ssa | $K apply --server-side "$AS" -f - 2>&1)" "configmap/ssa serverside-applied"
expect_eq "server-side apply of a Secret is patch, forbidden" \
    "$(secret team-a ssa | $K apply --server-side "$AS" -f - 2>&1)" \
    "$FORBID: secrets \"ssa\" is forbidden: User \"$SA\" cannot patch resource \"secrets\" in API group \"\" in the namespace \"team-a\""
expect_eq "client-side apply as the SA" "$(cm team-a csa | $K apply "$AS" -f - 2>&1)" "configmap/csa created"
expect_eq "list as the SA (discovery allowed)" "$($K -n team-a get cm "$AS" -o name 2>&1 | sort | tr '\n' ' ')" \
    "configmap/c27 configmap/c32 configmap/c33 configmap/csa configmap/ssa "
expect_eq "delete as the SA" "$($K -n team-a delete cm csa "$AS" 2>&1)" 'configmap "csa" deleted'
expect_eq "cluster-scoped list forbidden" "$($K get ns "$AS" 2>&1)" \
    "$FORBID: namespaces is forbidden: User \"$SA\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
expect_eq "get of a namespace names it" "$($K get ns team-a "$AS" 2>&1)" \
    "$FORBID: namespaces \"team-a\" is forbidden: User \"$SA\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"team-a\""
expect_eq "get -w lists first" "$($K -n team-a get secrets -w "$AS" --request-timeout=5s 2>&1)" \
    "$FORBID: secrets is forbidden: User \"$SA\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team-a\""
expect_eq "resourceNames: the named Secret passes (then 404)" "$($K -n team-a get secret named "$AS" 2>&1)" \
    "Error from server (NotFound): secrets \"named\" not found"
expect_eq "resourceNames: another Secret is forbidden" "$($K -n team-a get secret other "$AS" 2>&1)" \
    "$FORBID: secrets \"other\" is forbidden: User \"$SA\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-a\""

# A ClusterRole bound by a RoleBinding grants in that namespace only.
expect_eq "ClusterRole via RoleBinding: team-b" "$($K -n team-b get secrets "$AS" 2>&1)" "No resources found in team-b namespace."
expect_eq "ClusterRole via RoleBinding: not team-a" "$($K -n team-a get secrets "$AS" 2>&1)" \
    "$FORBID: secrets is forbidden: User \"$SA\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team-a\""
# Group subjects: a service account's implied groups.
expect_eq "group system:serviceaccounts:team-a" "$(cm team-c g1 | $K create "$AS" -f - 2>&1)" "configmap/g1 created"
expect_eq "explicit --as-group replaces the SA's groups" \
    "$(cm team-c g2 | $K create "$AS" --as-group=other -f - 2>&1)" \
    "$FORBID: error when creating \"STDIN\": configmaps is forbidden: User \"$SA\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"team-c\""
expect_eq "another namespace's SA is not in the group" \
    "$(cm team-c g3 | $K create --as=system:serviceaccount:team-b:deployer -f - 2>&1)" \
    "$FORBID: error when creating \"STDIN\": configmaps is forbidden: User \"system:serviceaccount:team-b:deployer\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"team-c\""
# Aggregated ClusterRoles: the union of the selected roles' rules, everywhere.
expect_eq "aggregated ClusterRole grants" "$($K get pods -A --as=carol -o name 2>&1)" ""
expect_eq "aggregated ClusterRole grants nothing else" "$($K get svc -A --as=carol 2>&1)" \
    "$FORBID: services is forbidden: User \"carol\" cannot list resource \"services\" in API group \"\" at the cluster scope"
expect_eq "system:masters may do anything" "$(secret team-a boss | $K create --as=bob --as-group=system:masters -f - 2>&1)" \
    "secret/boss created"
# No impersonation: the caller is cluster-admin.
expect_eq "unimpersonated writes are allowed" "$(secret team-a plain | $K create -f - 2>&1)" "secret/plain created"

# --- the raw answers
H="Impersonate-User: $SA"
out=$(status_of -X POST -H "$H" -H 'Content-Type: application/json' \
    -d '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"raw"}}' "$URL/api/v1/namespaces/team-a/secrets")
expect_eq "403 Status body" "$out" \
    "403 {\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"secrets is forbidden: User \\\"$SA\\\" cannot create resource \\\"secrets\\\" in API group \\\"\\\" in the namespace \\\"team-a\\\"\",\"reason\":\"Forbidden\",\"code\":403,\"details\":{\"kind\":\"secrets\"}}"
$K -n team-a create deployment web --image=nginx --dry-run=client -o yaml | $K apply -f - >/dev/null
out=$(status_of -X PATCH -H "$H" -H 'Content-Type: application/merge-patch+json' -d '{"status":{"replicas":0}}' \
    "$URL/apis/apps/v1/namespaces/team-a/deployments/web/status")
expect_eq "deployments/status rule grants the subresource" "${out%% *}" "200"
status_of -X PATCH -H "$H" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"replicas":3}}' \
    "$URL/apis/apps/v1/namespaces/team-a/deployments/web" >/dev/null
expect_eq "... but not the main resource" "$(field 'd["code"], d["message"], d["details"]')" \
    "403 deployments.apps \"web\" is forbidden: User \"$SA\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"team-a\" {'name': 'web', 'group': 'apps', 'kind': 'deployments'}"
status_of -X PUT -H "Impersonate-User: carol" -H 'Content-Type: application/json' \
    -d '{"spec":{"replicas":1}}' "$URL/apis/apps/v1/namespaces/team-a/deployments/web/scale" >/dev/null
expect_eq "subresource named in the message" "$(field 'd["message"]')" \
    "deployments.apps \"web\" is forbidden: User \"carol\" cannot update resource \"deployments/scale\" in API group \"apps\" in the namespace \"team-a\""
status_of -X DELETE -H "$H" "$URL/api/v1/namespaces/team-a/secrets" >/dev/null
expect_eq "DELETE on a collection is deletecollection" "$(field 'd["message"]')" \
    "secrets is forbidden: User \"$SA\" cannot deletecollection resource \"secrets\" in API group \"\" in the namespace \"team-a\""
status_of -H "$H" "$URL/api/v1/namespaces/team-a/configmaps?watch=true&timeoutSeconds=1" >/dev/null
expect_eq "?watch=true is the watch verb (the Role has list only)" "$(field 'd["message"]')" \
    "configmaps is forbidden: User \"$SA\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
status_of -H "Impersonate-User: alice" "$URL/api/v1/namespaces/team-b/pods" >/dev/null
expect_eq "a binding to a missing Role is the RBAC reason" "$(field 'd["message"]')" \
    "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"team-b\": RBAC: role.rbac.authorization.k8s.io \"gone\" not found"
out=$(status_of -H "Impersonate-User: alice" "$URL/kiln/faults")
expect_eq "non-resource path" "$out" \
    '403 {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"alice\" cannot get path \"/kiln/faults\"","reason":"Forbidden","code":403,"details":{}}'
expect_eq "discovery for authenticated users" "$(status_of -H 'Impersonate-User: alice' "$URL/apis" | cut -c1-3)" "200"
expect_eq "no discovery for system:anonymous" "$(status_of -H 'Impersonate-User: system:anonymous' "$URL/api")" \
    '403 {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"","reason":"Forbidden","code":403,"details":{}}'
expect_eq "/version is public" "$(status_of -H 'Impersonate-User: system:anonymous' "$URL/version" | cut -c1-3)" "200"
# Groups, extras or a uid without a user: WithImpersonation's plain-text 500.
expect_eq "Impersonate-Group without a user" \
    "$(curl -s -w ' %{http_code} %{content_type}' -H 'Impersonate-Group: system:masters' -H 'Impersonate-Group: g2' "$URL/api/v1/namespaces?limit=1")" \
    "Internal Server Error: \"/api/v1/namespaces?limit=1\": requested [{Group  system:masters    } {Group  g2    }] without impersonating a user
 500 text/plain; charset=utf-8"
expect_eq "Impersonate-Extra and -Uid without a user" \
    "$(curl -s -w ' %{http_code}' -H 'Impersonate-Extra-Scopes%2Fx: a' -H 'Impersonate-Uid: 42' "$URL/api/v1/pods")" \
    "Internal Server Error: \"/api/v1/pods\": requested [{UserExtra  a  authentication.k8s.io/v1  scopes/x} {UID  42  authentication.k8s.io/v1  }] without impersonating a user
 500"
expect_eq "nothing was written by refused requests" \
    "$($K -n team-a get secrets -o name | sort | tr '\n' ' ')" "secret/boss secret/plain "

finish
