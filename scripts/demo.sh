#!/usr/bin/env bash
# demo.sh: the README's main-job command. Installs what kiln needs, builds it,
# starts `kiln dev` (the embedded dev cluster with the controller), applies the
# web-app ResourceGraphDefinition and two instances with kubectl, waits for
# them to be Ready, prints their status and children, deletes them; then runs
# the gpu-service example on two simulated H100 nodes: GPU validation Jobs,
# Validated, Ready. Then it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
kiln=$PWD/build/bin/kiln

work=$(mktemp -d)
dev_pid=
cleanup() {
  [ -n "$dev_pid" ] && kill "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "kiln lint examples/web-app/rgd.yaml"
"$kiln" lint examples/web-app/rgd.yaml

step "kiln dev (dev cluster + controller)"
"$kiln" dev --port 0 --kubeconfig "$work/kubeconfig" --log-level warn --simulate-gpus h100x8:2 \
  >"$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 100); do
  grep -q "controller running" "$work/dev.log" 2>/dev/null && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.log"; exit 1; }
  sleep 0.1
done
cat "$work/dev.log"
export KUBECONFIG=$work/kubeconfig

step "kubectl apply -f examples/web-app/rgd.yaml"
kubectl apply -f examples/web-app/rgd.yaml
kubectl wait --for=condition=Ready rgd/web-app --timeout=60s
kubectl get rgd web-app

step "kubectl apply -f examples/web-app/instance.yaml"
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n' | kubectl apply -f -
kubectl apply -f examples/web-app/instance.yaml
kubectl wait --for=condition=Ready webapp/shop webapp/docs -n team-a --timeout=60s
kubectl get webapps -n team-a

step "status of webapp/shop"
kubectl get webapp shop -n team-a -o jsonpath='{.status}' | python3 -m json.tool

step "children (label app.kubernetes.io/managed-by=kiln)"
kubectl get deployments,services,ingresses -n team-a -l app.kubernetes.io/managed-by=kiln

step "kubectl delete -f examples/web-app/instance.yaml"
kubectl delete -f examples/web-app/instance.yaml --wait=true --timeout=60s
kubectl get deployments,services,ingresses -n team-a -l app.kubernetes.io/managed-by=kiln

step "GPU validation: kubectl apply -f examples/gpu-service/ (two simulated H100 nodes)"
kubectl get nodes -l nvidia.com/gpu.present=true \
  -o custom-columns='NODE:.metadata.name,GPUS:.status.allocatable.nvidia\.com/gpu,PRODUCT:.metadata.labels.nvidia\.com/gpu\.product'
kubectl apply -f examples/gpu-service/rgd.yaml
kubectl wait --for=condition=Ready rgd/gpu-service --timeout=60s
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: models\n' | kubectl apply -f -
kubectl apply -f examples/gpu-service/instance.yaml
kubectl wait --for=condition=Ready gpuservice/qwen -n models --timeout=120s
kubectl get gpuservice qwen -n models
kubectl get jobs,deployments -n models

step "status.validation of gpuservice/qwen (per node and check: measured, threshold, result)"
kubectl get gpuservice qwen -n models -o json | python3 -c '
import json, sys
v = json.load(sys.stdin)["status"]["validation"]["gpuCheck"]
print("phase %s, simulated %s" % (v["phase"], v["simulated"]))
for n in v["nodes"]:
    print("%s: %s (%s, %d GPUs, Job %s)" % (n["name"], n["result"], n["accelerator"], n["gpus"], n["job"]))
    for c in n["checks"]:
        print("  %-14s %-4s %-12s %10s %-8s %s %s" % (c["name"], c["result"], c.get("metric", ""),
              c.get("value", ""), c.get("unit", ""), c.get("op", ""), c.get("threshold", "")))
'
kubectl delete -f examples/gpu-service/instance.yaml --wait=true --timeout=60s
