#!/usr/bin/env bash
# tests/devcluster/real_gpus_test.sh: --real-gpus. With stand-in kiln-gpucheck
# binaries (--gpucheck) printing canned device-check documents: 8 H100s make
# kiln-dev a GPU node with GFD's labels and nvidia.com/gpu 8 (exact), a Job
# pinned there runs the binary without --simulate, and the probe's argv is
# the documented one; 1 GPU through `kiln dev`; a probe exiting 2 leaves a CPU
# node and one warning with its reason; a hanging probe is killed (with its
# child) after --real-gpus-timeout and the server still starts; a restart
# (--data-dir) without GPUs takes the labels away; the real kiln-gpucheck of
# this build (no GPU visible) leaves a CPU node.
# Usage: real_gpus_test.sh <kiln-devcluster> [<kiln>]
BIN="$1"
KILN="${2:-}"
. "$(dirname "$0")/lib.sh"
K="$KUBECTL_DIR/kubectl.1.32"
DEVCLUSTER="$BIN"

py() { /usr/bin/python3 -c "$@"; }

# stand_in <file> <gpus> [exit status]: a kiln-gpucheck that records its argv
# (one line per run, in <file>.argv) and prints a device-check document.
stand_in() {
    local gpus="" i
    for ((i = 0; i < $2; i++)); do
        gpus="$gpus${gpus:+,}{\"index\":$i,\"name\":\"NVIDIA H100 80GB HBM3\",\"uuid\":\"GPU-$i\",\"pciBusId\":\"0000:1$i:00.0\",\"computeCapability\":\"9.0\",\"memoryBytes\":85029158912,\"smCount\":132,\"eccEnabled\":true}"
    done
    cat >"$1" <<SH
#!/bin/sh
echo "\$*" >>"$1.argv"
echo '{"kind":"kiln-gpucheck","schemaVersion":1,"node":"kiln-dev","simulated":false,"host":{"cudaBuild":true,"cudaDriverVersion":"13.0","cudaRuntimeVersion":"13.0","nvml":true,"driverVersion":"580.65.06"},"gpus":[$gpus],"checks":[],"result":"passed","exitCode":0,"reason":"1 checks passed on node kiln-dev"}'
exit ${3:-0}
SH
    chmod +x "$1"
}

# gpu_labels: kiln-dev's GPU labels, sorted, "k=v" per line.
gpu_labels() {
    $K get node kiln-dev -o json | py '
import json, sys
labels = json.load(sys.stdin)["metadata"].get("labels", {})
for k in sorted(labels):
    if k.startswith("nvidia.com/") or k.startswith("feature.node.kubernetes.io/pci-10de"):
        print(k + "=" + labels[k])'
}

node_gpus() {
    $K get node kiln-dev -o jsonpath='{.status.capacity.nvidia\.com/gpu}/{.status.allocatable.nvidia\.com/gpu}'
}

# GFD's nvidia.com/gpu.machine comes from DMI, where this machine has it.
MACHINE=""
if [ -r /sys/class/dmi/id/product_name ]; then
    m=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//; s/[[:space:]]/-/g' /sys/class/dmi/id/product_name)
    [ -n "$m" ] && MACHINE="nvidia.com/gpu.machine=$m"
fi
expected_labels() {
    printf '%s\n' "feature.node.kubernetes.io/pci-10de.present=true" \
        "nvidia.com/cuda.driver.major=580" "nvidia.com/cuda.driver.minor=65" \
        "nvidia.com/cuda.driver.rev=06" "nvidia.com/cuda.runtime.major=13" \
        "nvidia.com/cuda.runtime.minor=0" "nvidia.com/gpu.compute.major=9" \
        "nvidia.com/gpu.compute.minor=0" "nvidia.com/gpu.count=$1" \
        "nvidia.com/gpu.family=hopper" ${MACHINE:+"$MACHINE"} "nvidia.com/gpu.memory=81090" \
        "nvidia.com/gpu.present=true" "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3" \
        "nvidia.com/gpu.replicas=1" "nvidia.com/gpu.sharing-strategy=none" | LC_ALL=C sort
}

# --- 8 GPUs, kept in a data directory ---
# 85029158912 bytes is 81090 MiB (nvidia.com/gpu.memory).
stand_in "$WORK/gpucheck8" 8
start_server --real-gpus --gpucheck "$WORK/gpucheck8" --data-dir "$WORK/data" --log-level info
expect_eq "8 GPUs: capacity/allocatable" "$(node_gpus)" "8/8"
expect_eq "8 GPUs: labels" "$(gpu_labels)" "$(expected_labels 8)"
expect_eq "8 GPUs: annotation" \
    "$($K get node kiln-dev -o jsonpath='{.metadata.annotations.kiln\.dev/real-gpus}')" \
    "8 x NVIDIA H100 80GB HBM3"
expect_eq "8 GPUs: one startup line" \
    "$(grep -c 'real GPUs on node kiln-dev: 8 x NVIDIA H100 80GB HBM3$' "$WORK/server.err")" 1
expect_eq "probe argv" "$(cat "$WORK/gpucheck8.argv")" \
    "--checks device --compact --timeout 10 --node kiln-dev"
expect_eq "simulated nodes: none" "$($K get nodes -o name)" "node/kiln-dev"
# A validation Job pinned to kiln-dev runs the binary on the real GPUs: no --simulate.
cat <<YAML | $K apply -f - >/dev/null || fail "apply job"
apiVersion: batch/v1
kind: Job
metadata: {name: real, namespace: default}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeName: kiln-dev
      containers:
      - name: gpucheck
        image: ghcr.io/kiln-dev/kiln-gpucheck:0.1.0
        command: [kiln-gpucheck]
        args: [--checks, device, --expect-gpus, "8", --compact]
        resources: {limits: {nvidia.com/gpu: "8"}}
YAML
poll_eq 20 True $K get job real -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}' ||
    fail "job on kiln-dev did not complete"
expect_match "job argv: real run, no --simulate" "$(sed -n 2p "$WORK/gpucheck8.argv")" \
    "^--checks device --expect-gpus 8 --compact --termination-log [^ ]+/termination-log$"
stop_server

# --- restart on the same data without a GPU: the labels go ---
cat >"$WORK/nogpu" <<'SH'
#!/bin/sh
echo '{"kind":"kiln-gpucheck","simulated":false,"gpus":[],"checks":[],"host":{"cudaBuild":true},"error":"no usable CUDA device: cudaGetDeviceCount: no CUDA-capable device is detected","result":"error","exitCode":2}'
exit 2
SH
chmod +x "$WORK/nogpu"
: >"$WORK/server.err"
start_server --real-gpus --gpucheck "$WORK/nogpu" --data-dir "$WORK/data"
expect_eq "restart without GPUs: labels gone" "$(gpu_labels)" ""
expect_eq "restart without GPUs: capacity gone" "$(node_gpus)" "/"
expect_eq "restart without GPUs: annotation gone" \
    "$($K get node kiln-dev -o jsonpath='{.metadata.annotations.kiln\.dev/real-gpus}')" ""
expect_eq "restart without GPUs: node still Ready" \
    "$($K get node kiln-dev -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" True
expect_eq "no GPU: one warning with the probe's reason" \
    "$(grep -c -- '--real-gpus: no GPUs on node kiln-dev, it stays a CPU node: kiln-gpucheck found no GPU (exit 2): no usable CUDA device: cudaGetDeviceCount: no CUDA-capable device is detected$' "$WORK/server.err")" 1
expect_eq "no GPU: no startup line" "$(grep -c 'real GPUs on node' "$WORK/server.err")" 0
stop_server

# --- a probe that hangs is killed, with its child, after the timeout ---
cat >"$WORK/hang" <<SH
#!/bin/sh
sleep 300 &
echo \$! >"$WORK/hang.child"
wait
SH
chmod +x "$WORK/hang"
: >"$WORK/server.err"
t0=$SECONDS
start_server --real-gpus --gpucheck "$WORK/hang" --real-gpus-timeout 2
elapsed=$((SECONDS - t0))
[ "$elapsed" -le 6 ] && echo "ok: hanging probe: server up after ${elapsed}s" ||
    fail "hanging probe: server took ${elapsed}s to start (timeout 2 s)"
expect_match "hanging probe: warning" "$(cat "$WORK/server.err")" \
    "no GPUs on node kiln-dev, it stays a CPU node: $WORK/hang --checks device did not finish within 2 s; killed it"
expect_eq "hanging probe: CPU node" "$(gpu_labels)$(node_gpus)" "/"
child=$(cat "$WORK/hang.child" 2>/dev/null)
if [ -z "$child" ]; then
    fail "hanging probe: its child never started"
# Killed, it may stay a zombie a moment until its new parent reaps it.
elif poll_sh 2 "! grep -q '^[0-9]* (sleep) [^Z]' /proc/$child/stat"; [ $? -ne 0 ]; then
    fail "hanging probe: its child $child still runs"
    kill "$child"
else
    echo "ok: hanging probe: its child is gone"
fi
stop_server

# --- this build's kiln-gpucheck (default lookup), no GPU visible ---
: >"$WORK/server.err"
DEVCLUSTER="env CUDA_VISIBLE_DEVICES= $BIN"
start_server --real-gpus
DEVCLUSTER="$BIN"
expect_match "real kiln-gpucheck: warning" "$(cat "$WORK/server.err")" \
    "it stays a CPU node: kiln-gpucheck found no GPU \(exit 2\): (kiln-gpucheck was built without CUDA|no usable CUDA device|no CUDA device visible)"
expect_eq "real kiln-gpucheck: CPU node" "$(gpu_labels)$(node_gpus)" "/"
stop_server

# --- flag errors ---
out=$($BIN --real-gpus-timeout 0 2>&1)
expect_eq "bad timeout: exit 2" "$?" 2
expect_match "bad timeout: message" "$out" '--real-gpus-timeout: expected seconds 1..600, got "0"'

# --- the same flag through `kiln dev` (they share the parser) ---
if [ -n "$KILN" ]; then
    stand_in "$WORK/gpucheck1" 1
    : >"$WORK/server.err"
    DEVCLUSTER="$KILN dev --no-controller"
    start_server --real-gpus --gpucheck "$WORK/gpucheck1" --log-level info
    expect_eq "kiln dev, 1 GPU: capacity/allocatable" "$(node_gpus)" "1/1"
    expect_eq "kiln dev, 1 GPU: labels" "$(gpu_labels)" "$(expected_labels 1)"
    expect_match "kiln dev, 1 GPU: startup line" "$(cat "$WORK/server.err")" \
        "real GPUs on node kiln-dev: 1 x NVIDIA H100 80GB HBM3"
    stop_server
else
    echo "skip: kiln dev part (no kiln binary in this build)"
fi

finish
