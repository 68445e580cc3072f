#!/usr/bin/env bash
# tests/devcluster/gpucheck_jobs_test.sh: validation Jobs (pods running the
# kiln-gpucheck image) really run on the dev cluster's simulated kubelet: a
# healthy simulated node passes, a slow one fails naming the check, a
# NotReady node leaves the pod Pending until the Job's deadline, the CPU node
# runs the binary without --simulate (no GPU here: exit 2), and deleting a Job
# or passing its deadline kills a running container. Then, with a stand-in
# binary (--gpucheck), the kubelet's termination-message rules and a missing
# binary (exit 127).
# Usage: gpucheck_jobs_test.sh <kiln-devcluster> (kiln-gpucheck beside it)
BIN="$1"
. "$(dirname "$0")/lib.sh"
K="$KUBECTL_DIR/kubectl.1.32"
mkdir -p "$WORK/tmp"
# The server's runs put their files under $WORK/tmp, and see no GPU even on
# a machine that has one, so the CPU node's run must exit 2.
DEVCLUSTER="env TMPDIR=$WORK/tmp CUDA_VISIBLE_DEVICES= $BIN"
start_server --simulate-gpus h100x2:1,h100x2:1:slow,h100x1:1:notready

py() { /usr/bin/python3 -c "$@"; }

# job <name> <node> <gpus or ""> <deadline> [extra args, YAML flow list items]
job() {
    local limits=""
    if [ -n "$3" ]; then
        limits="resources: {limits: {nvidia.com/gpu: \"$3\"}, requests: {nvidia.com/gpu: \"$3\"}}"
    fi
    cat <<YAML | $K apply -f - >/dev/null || fail "apply job $1"
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: default
  labels: {kiln.dev/instance-uid: u1, kiln.dev/validation-run: r1, kiln.dev/node: $2}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: $4
  ttlSecondsAfterFinished: 86400
  template:
    metadata: {labels: {kiln.dev/instance-uid: u1, kiln.dev/validation-run: r1, kiln.dev/node: $2}}
    spec:
      restartPolicy: Never
      nodeName: $2
      serviceAccountName: kiln-gpucheck
      automountServiceAccountToken: false
      tolerations: [{operator: Exists}]
      containers:
      - name: gpucheck
        image: ghcr.io/kiln-dev/kiln-gpucheck:0.1.0
        command: [kiln-gpucheck]
        args: [--accelerator, h100-sxm, --checks, "device,memory,hbm-bandwidth,gemm,pcie,p2p", --expect-gpus, "${3:-1}", --timeout, "10", --compact ${5:+, $5}]
        env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}, {name: PREFIX, value: "on-\$(NODE_NAME)"}]
        $limits
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: ${TMP_POLICY:-File}
YAML
}

# pod_of <job>: the job's pod as JSON
pod_of() { $K get pods -l "job-name=$1" -o json; }

# wait_for <what> <seconds> <command...>: until the command succeeds
wait_for() {
    local what=$1 n=$(($2 * 20))
    shift 2
    for _ in $(seq 1 "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    fail "$what: not within the time"
    return 1
}
no_procs() { ! pgrep -f -- "--termination-log $WORK/tmp/"; }
job_has() { [ "$($K get job "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}")" = True ]; }
pod_phase_is() { [ "$($K get pods -l "job-name=$1" -o jsonpath='{.items[0].status.phase}')" = "$2" ]; }

expect_eq "nodes" "$($K get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[0].status}/{.metadata.annotations.kiln\.dev/simulate-fail} {end}')" \
    "kiln-dev=True/ kiln-gpu-h100x1-notready-0=False/ kiln-gpu-h100x2-0=True/ kiln-gpu-h100x2-slow-0=True/hbm-bandwidth,gemm "

job good kiln-gpu-h100x2-0 2 30
job slow kiln-gpu-h100x2-slow-0 2 30
job cpu kiln-dev "" 30 '--node, "$(PREFIX)"'
# A run that hangs until killed: its deadline ends it while it runs.
job hang kiln-gpu-h100x2-0 2 4 '--simulate-hang, gemm, --watchdog, "600"'
# One more that hangs, deleted while it runs.
job gone kiln-gpu-h100x2-0 2 60 '--simulate-hang, gemm, --watchdog, "600"'
# And one whose pod is deleted while it runs.
job podgone kiln-gpu-h100x2-0 2 60 '--simulate-hang, gemm, --watchdog, "600"'

# --- a running container: Running, Job active and ready
wait_for "gone Running" 10 pod_phase_is gone Running
out=$(pod_of gone | py '
import json, sys
p = json.load(sys.stdin)["items"][0]
cs = p["status"]["containerStatuses"][0]
print(p["status"]["phase"], list(cs["state"]), cs["ready"], cs["started"])
')
expect_eq "gone pod running" "$out" "Running ['running'] True True"
wait_for "gone job ready" 5 sh -c "[ \"\$($K get job gone -o jsonpath='{.status.active}/{.status.ready}')\" = 1/1 ]"
wait_for "podgone Running" 10 pod_phase_is podgone Running
expect_eq "processes running" "$(pgrep -fc -- "--termination-log $WORK/tmp/")" "3"

# --- the healthy node: Succeeded, the summary as termination message, Job Complete
wait_for "good Complete" 10 job_has good Complete
out=$(pod_of good | py '
import json, sys
p = json.load(sys.stdin)["items"][0]
md, st = p["metadata"], p["status"]
cs = st["containerStatuses"][0]
t = cs["state"]["terminated"]
m = json.loads(t["message"])
print(p["metadata"]["name"].startswith("good-") and len(md["name"]) == 10,
      md["labels"]["job-name"], md["labels"]["batch.kubernetes.io/job-name"],
      md["labels"]["controller-uid"] == md["labels"]["batch.kubernetes.io/controller-uid"] == md["ownerReferences"][0]["uid"],
      md["labels"]["kiln.dev/validation-run"],
      md["ownerReferences"][0]["kind"], md["ownerReferences"][0]["controller"], md["ownerReferences"][0]["blockOwnerDeletion"],
      p["spec"]["nodeName"], st["phase"], t["exitCode"], t["reason"], cs["ready"],
      m["simulated"], m["result"], m["node"], m["gpus"], m["accelerator"],
      [c["status"] + ":" + c.get("reason", "") for c in st["conditions"] if c["type"] in ("Ready", "PodScheduled")])
')
expect_eq "good pod" "$out" "True good good True r1 Job True True kiln-gpu-h100x2-0 Succeeded 0 Completed False True passed kiln-gpu-h100x2-0 2 h100-sxm ['False:PodCompleted', 'True:']"
expect_eq "good job status" "$($K get job good -o jsonpath='{.status.succeeded}/{.status.active}/{.status.failed} {.status.conditions[*].type} {.status.conditions[*].reason}')" \
    "1// SuccessCriteriaMet Complete CompletionsReached CompletionsReached"
expect_match "good job completionTime" "$($K get job good -o jsonpath='{.status.completionTime}')" '^[0-9-]+T[0-9:]+Z$'

# --- the slow node: Failed, exit 1, the message names the failing check, Job Failed
wait_for "slow Failed" 10 job_has slow Failed
out=$(pod_of slow | py '
import json, sys
p = json.load(sys.stdin)["items"][0]
t = p["status"]["containerStatuses"][0]["state"]["terminated"]
m = json.loads(t["message"])
print(p["status"]["phase"], t["exitCode"], t["reason"], m["result"],
      ",".join(c["name"] for c in m["checks"] if c["result"] == "fail"))
print(m["reason"])
')
expect_eq "slow pod" "$out" "Failed 1 Error failed hbm-bandwidth,gemm
hbm-bandwidth on node kiln-gpu-h100x2-slow-0 GPU 1: copyGBps measured 1507.5 GB/s, expected >= 2512.5 GB/s (0.75 x 3350) (and more failures)"
expect_eq "slow job status" "$($K get job slow -o jsonpath='{.status.failed}/{.status.succeeded}/{.status.active} {.status.conditions[*].type} {.status.conditions[*].reason}')" \
    "1// FailureTarget Failed BackoffLimitExceeded BackoffLimitExceeded"

# --- the CPU node: no --simulate, no GPU here: exit 2 with a JSON reason; $(VAR) expanded
wait_for "cpu Failed" 10 job_has cpu Failed
out=$(pod_of cpu | py '
import json, sys
p = json.load(sys.stdin)["items"][0]
t = p["status"]["containerStatuses"][0]["state"]["terminated"]
m = json.loads(t["message"])
print(p["status"]["phase"], t["exitCode"], m["result"], m["exitCode"], m["simulated"], m["node"])
')
expect_eq "cpu pod" "$out" "Failed 2 error 2 False on-kiln-dev"

# --- the NotReady node: Pending, nothing runs, then DeadlineExceeded and the pod deleted.
# Created here, not with the others: its short deadline must not run out
# while the checks above take their time on a loaded machine.
job stuck kiln-gpu-h100x1-notready-0 1 4
wait_for "stuck pod" 5 sh -c "[ -n \"\$($K get pods -l job-name=stuck -o name)\" ]"
out=$(pod_of stuck | py '
import json, sys
p = json.load(sys.stdin)["items"][0]
print(p["status"]["phase"], "containerStatuses" in p["status"], p["spec"]["nodeName"])
')
expect_eq "stuck pod pending" "$out" "Pending False kiln-gpu-h100x1-notready-0"
expect_eq "stuck job active" "$($K get job stuck -o jsonpath='{.status.active}')" "1"
wait_for "stuck DeadlineExceeded" 8 job_has stuck Failed
expect_eq "stuck job status" "$($K get job stuck -o jsonpath='{.status.failed}/{.status.active} {.status.conditions[*].type} {.status.conditions[*].reason}')" \
    "1/ FailureTarget Failed DeadlineExceeded DeadlineExceeded"
expect_eq "stuck job message" "$($K get job stuck -o jsonpath='{.status.conditions[1].message}')" "Job was active longer than specified deadline"
expect_eq "stuck pod deleted" "$($K get pods -l job-name=stuck -o name)" ""

# --- the deadline of a running container: killed, pod deleted
wait_for "hang DeadlineExceeded" 8 job_has hang Failed
expect_eq "hang job reason" "$($K get job hang -o jsonpath='{.status.conditions[1].reason}')" "DeadlineExceeded"
expect_eq "hang pod deleted" "$($K get pods -l job-name=hang -o name)" ""

# --- deleting a Job: the garbage collector deletes its pod, the container is killed
# --- deleting a running pod: killed, and the Job fails (backoffLimit 0)
$K delete pods -l job-name=podgone --wait=false >/dev/null 2>&1 || fail "delete podgone pod"
wait_for "podgone Failed" 5 job_has podgone Failed
expect_eq "podgone job status" "$($K get job podgone -o jsonpath='{.status.failed}/{.status.active} {.status.conditions[1].reason}')" "1/ BackoffLimitExceeded"
expect_eq "podgone no new pod" "$($K get pods -l job-name=podgone -o name)" ""
expect_eq "delete gone" "$($K delete job gone 2>&1)" 'job.batch "gone" deleted'
wait_for "gone pod collected" 5 sh -c "[ -z \"\$($K get pods -l job-name=gone -o name)\" ]"
expect_eq "delete good" "$($K delete job good 2>&1)" 'job.batch "good" deleted'
wait_for "good pod collected" 5 sh -c "[ -z \"\$($K get pods -l job-name=good -o name)\" ]"
wait_for "no process left" 5 no_procs
wait_for "no files left" 5 sh -c "[ -z \"\$(ls -A '$WORK/tmp')\" ]"
stop_server

# --- a stand-in binary: the kubelet's termination-message rules
cat >"$WORK/fake-gpucheck" <<'SH'
#!/bin/sh
# The last argument is the termination-log file.
for a in "$@"; do tl=$a; done
case " $* " in
*" --mode logs "*) i=1; while [ $i -le 100 ]; do echo "line $i"; i=$((i + 1)); done; exit 3 ;;
*" --mode big "*) head -c 5000 /dev/zero | tr '\0' a >"$tl"; printf END >>"$tl"; exit 0 ;;
*) echo "args: $*" >"$tl"; exit 0 ;;
esac
SH
chmod +x "$WORK/fake-gpucheck"
start_server --simulate-gpus h100x2:1:fail=p2p+memory --gpucheck "$WORK/fake-gpucheck"
expect_eq "fail= node" "$($K get node kiln-gpu-h100x2-fail-p2p-memory-0 -o jsonpath='{.metadata.annotations.kiln\.dev/simulate-fail}')" "p2p,memory"
job args kiln-gpu-h100x2-fail-p2p-memory-0 "" 30 '--checks, "p2p,gemm"'
TMP_POLICY=FallbackToLogsOnError job logs kiln-dev "" 30 '--mode, logs'
job big kiln-dev "" 30 '--mode, big'
wait_for "args Complete" 10 job_has args Complete
expect_match "argv on a simulated node" "$(pod_of args | py 'import json,sys; print(json.load(sys.stdin)["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"].strip())')" \
    "^args: --accelerator h100-sxm --checks device,memory,hbm-bandwidth,gemm,pcie,p2p --expect-gpus 1 --timeout 10 --compact --checks p2p,gemm --simulate h100 --gpus 2 --simulate-fail p2p --termination-log $WORK/tmp/kiln-gpucheck-[A-Za-z0-9]{6}/termination-log\$"
wait_for "logs Failed" 10 job_has logs Failed
expect_eq "fallback to the last 80 lines" "$(pod_of logs | py '
import json, sys
t = json.load(sys.stdin)["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]
print(t["exitCode"], t["message"] == "".join("line %d\n" % i for i in range(21, 101)))')" "3 True"
wait_for "big Complete" 10 job_has big Complete
expect_eq "message keeps the last 4096 bytes" "$(pod_of big | py '
import json, sys
m = json.load(sys.stdin)["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
print(len(m), m.endswith("aEND"), set(m[:-3]))')" "4096 True {'a'}"
stop_server

# --- no binary: exit 127 and how to point at one
start_server --gpucheck "$WORK/missing/kiln-gpucheck"
job nobin kiln-dev "" 30
wait_for "nobin Failed" 10 job_has nobin Failed
expect_eq "missing binary" "$(pod_of nobin | py '
import json, sys
t = json.load(sys.stdin)["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]
print(t["exitCode"], t["reason"], t["message"])')" \
    "127 StartError kiln dev cluster: --gpucheck $WORK/missing/kiln-gpucheck is not an executable file; build it (cmake --build <dir> --target kiln-gpucheck) or pass --gpucheck PATH to kiln dev or kiln-devcluster"
stop_server
finish
