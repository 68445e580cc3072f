#!/usr/bin/python3
"""Capture the Argo CD health check's test objects from the kiln dev cluster.

usage: capture_health_testdata.py KILN SOURCE_DIR [--check]

Starts `KILN dev --no-controller` (with a simulated kubelet that takes
KUBELET_DELAY_MS to make a workload ready) and, as a separate process that is
stopped and started again, `KILN controller`. Every status in the captured
objects is one the controller wrote; the script only does what a user does
(kubectl apply, patch, annotate, delete) and then saves `kubectl get -o yaml`
of the object once it is in the state wanted, under deploy/argocd/testdata/:

  rgd-active                 examples/web-app's RGD, served
  rgd-graph-rejected         a served RGD changed to a graph with a cycle:
                             generation 2 refused, generation 1 still served
  rgd-graph-invalid          an RGD whose first generation has that cycle
  rgd-kind-pending           an RGD whose CRD the API server refuses to write
                             (injected 500s on the CRD, /kiln/faults): the kind
                             is not served yet
  instance-reconciling       a new WebApp while its Deployment is not ready
  instance-ready             all children ready
  instance-not-ready         a Ready WebApp scaled from 3 to 4 replicas, caught
                             while the Deployment rolls out (generation 2)
  instance-stalled           spec.name is not a valid object name: the API
                             server refuses the Deployment (422)
  instance-suspended         a Ready WebApp annotated kiln.dev/reconcile: suspended
  instance-deleting          deleted while its Ingress carries another finalizer:
                             kiln holds the deletion and reports DELETING
  -- the controller is stopped --
  instance-stale-generation  a Ready WebApp scaled after the controller stopped
  instance-new               created after the controller stopped: no status
  instance-deleting-controller-stopped
                             a Ready WebApp deleted after the controller
                             stopped: deletionTimestamp, kiln.dev/finalizer kept

Each state is waited for by polling (never a fixed sleep) and the object is
saved only when the saved text itself shows the state, so a capture is the
same from run to run except for what the server makes up per run.

--check captures into a temporary directory and compares with the checked-in
files, ignoring only what differs on every run: uid, resourceVersion,
creationTimestamp, deletionTimestamp's value, managedFields, the conditions'
lastTransitionTime and the Service cluster IP projected into status.endpoint.
The conditions' type, status, reason, message and observedGeneration, and
everything else, must match.
"""
import copy
import difflib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HEADER = ("# kubectl get -o yaml from the kiln dev cluster, captured by\n"
          "# tests/deploy/capture_health_testdata.py; the status is the one `kiln controller`\n"
          "# wrote (the script only drives the objects with kubectl).\n")

# Long enough to catch a WebApp while its Deployment is not ready (a few
# kubectl round trips), short enough to keep the whole capture quick.
KUBELET_DELAY_MS = 3000
TIMEOUT_S = 20
NS = "team-a"
HOLD = "example.com/hold"


class Cluster:
    """`kiln dev` without its controller; kubectl against it through .kubectl()."""

    def __init__(self, kiln, tmp, args=()):
        self.env = dict(os.environ, KUBECONFIG=os.path.join(tmp, "kubeconfig"),
                        KUBECACHEDIR=os.path.join(tmp, "kube-cache"))
        self.log = open(os.path.join(tmp, "dev.log"), "w")
        self.out = os.path.join(tmp, "dev.out")
        self.url = None
        self.proc = subprocess.Popen(
            [kiln, "dev", "--no-controller", "--kubeconfig", self.env["KUBECONFIG"],
             "--log-level", "warn", *args],
            stdout=open(self.out, "w"), stderr=self.log, cwd=tmp)
        for _ in range(200):
            text = open(self.out).read()
            if os.path.exists(self.env["KUBECONFIG"]) and "listening on " in text:
                self.url = text.split("listening on ", 1)[1].split()[0]
                return
            time.sleep(0.05)
        self.stop()
        sys.exit("kiln dev did not start")

    def kubectl(self, *args, stdin=None):
        r = subprocess.run(["kubectl", *args], env=self.env, input=stdin, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def faults(self, method, body=None):
        """The dev cluster's fault injection (docs/devcluster.md)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/kiln/faults", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        # Straight to the loopback server, whatever *_proxy says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Controller:
    """`kiln controller` as its own process, so it can be stopped mid-story."""

    def __init__(self, kiln, cluster, log):
        self.kiln, self.cluster, self.log = kiln, cluster, log
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.kiln, "controller", "--kubeconfig", self.cluster.env["KUBECONFIG"],
             "--workers", "2", "--log-format", "json", "--log-level", "info",
             "--metrics-bind-address", "0", "--health-probe-bind-address", "0"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "killed"
        self.proc = None
        if rc != 0:
            raise SystemExit(f"kiln controller exited with {rc} after SIGTERM\n" + self.tail())

    def tail(self):
        try:
            return "--- controller log (last 30 lines)\n" + "".join(
                open(self.log).readlines()[-30:])
        except OSError:
            return ""


def cond(doc, type_):
    for c in ((doc or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def current(doc):
    """The status is for the object's latest generation."""
    st = doc.get("status") or {}
    return st.get("observedGeneration") == doc["metadata"].get("generation")


class Capture:
    def __init__(self, c, ctl, outdir):
        self.c, self.ctl, self.outdir = c, ctl, outdir

    def get(self, resource, name, ns=None):
        args = ["get", resource, name, "-o", "yaml"] + (["-n", ns] if ns else [])
        r = subprocess.run(["kubectl", *args], env=self.c.env, capture_output=True, text=True)
        if r.returncode != 0:
            return None, None
        return r.stdout, yaml.safe_load(r.stdout)

    def wait(self, what, resource, name, ns, pred, timeout=TIMEOUT_S):
        """Polls until pred(doc) holds; returns (text, doc) of that very read."""
        end = time.monotonic() + timeout
        doc = None
        while time.monotonic() < end:
            text, doc = self.get(resource, name, ns)
            if doc is not None and pred(doc):
                return text, doc
            time.sleep(0.05)
        status = yaml.safe_dump((doc or {}).get("status"), sort_keys=False)
        raise SystemExit(f"{resource}/{name}: not {what} within {timeout} s; status:\n"
                         f"{status}\n{self.ctl.tail()}")

    def save(self, case, what, resource, name, ns, pred):
        text, _ = self.wait(what, resource, name, ns, pred)
        self.write(case, text)

    def write(self, case, text):
        with open(os.path.join(self.outdir, case + ".yaml"), "w") as f:
            f.write(HEADER + text)
        print(f"captured {case}")

    def save_watched(self, case, what, resource, name, ns, pred, started, timeout=TIMEOUT_S):
        """save() for a state that may last less than a poll: reads every
        version of the object from `kubectl get -w -o yaml`, calling started()
        once the first one arrives (the watch then resumes from it, so no
        later version is missed). A version is complete once the next one
        starts ("---"), so the state must be followed by another write."""
        args = ["get", resource, name, "-o", "yaml", "-w"] + (["-n", ns] if ns else [])
        p = subprocess.Popen(["kubectl", *args], env=self.c.env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        end = time.monotonic() + timeout
        lines, last = [], None
        try:
            while time.monotonic() < end:
                if not select.select([p.stdout], [], [], 0.2)[0]:
                    continue
                line = p.stdout.readline()
                if started and line:
                    started()
                    started = None
                if line in ("---\n", ""):
                    text = "".join(lines)
                    lines = []
                    if text:
                        last = yaml.safe_load(text)
                        if pred(last):
                            self.write(case, text)
                            return
                    if line == "":
                        break
                    continue
                lines.append(line)
        finally:
            p.kill()
            p.wait()
        status = yaml.safe_dump((last or {}).get("status"), sort_keys=False)
        raise SystemExit(f"{resource}/{name}: not seen {what} within {timeout} s; last status:\n"
                         f"{status}\n{self.ctl.tail()}")


def webapp(name, **spec):
    """A WebApp like examples/web-app's first instance; spec overrides."""
    s = {"name": name, "image": "ghcr.io/example/shop:2.4.1", "replicas": 3,
         "ingress": {"enabled": True, "host": "shop.example.com"}}
    s.update(spec)
    return yaml.safe_dump({"apiVersion": "kiln.dev/v1alpha1", "kind": "WebApp",
                           "metadata": {"name": name, "namespace": NS}, "spec": s})


def webapp_named(name, spec_name):
    doc = yaml.safe_load(webapp(name))
    doc["spec"]["name"] = spec_name
    return yaml.safe_dump(doc)


def rgd_variant(rgd, name, kind, cycle=False):
    """A copy of the web-app RGD under its own name and kind (so its own CRD);
    with cycle, the Service's name reads the Ingress, which reads the Service."""
    obj = copy.deepcopy(rgd)
    obj["metadata"]["name"] = name
    obj["spec"]["schema"]["kind"] = kind
    if cycle:
        for r in obj["spec"]["resources"]:
            if r["id"] == "service":
                r["template"]["metadata"]["name"] = "${ingress.metadata.name}"
    return yaml.safe_dump(obj)


def ready(doc):
    return current(doc) and cond(doc, "Ready").get("status") == "True"


def capture_rgds(cap, c, ctl, src):
    rgd_file = os.path.join(src, "examples/web-app/rgd.yaml")
    rgd = yaml.safe_load(open(rgd_file))

    # The API server fails the first 8 writes of this RGD's CRD (one fault
    # rule each, the most it takes); the controller backs off 5 ms, 10 ms, ...
    # 640 ms between them, so for about a second the kind is not served, and
    # then it is (which ends the version save_watched needs). The RGD exists
    # and is watched before the controller starts, so no version is missed.
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pendingwebapps.kiln.dev"
    for _ in range(8):
        c.faults("POST", {"failNth": {"n": 1, "code": 500, "method": "PATCH",
                                      "pathPrefix": crd_path}})
    c.kubectl("apply", "-f", "-", stdin=rgd_variant(rgd, "web-app-pending", "PendingWebApp"))
    cap.save_watched("rgd-kind-pending", "waiting for its kind", "rgd", "web-app-pending", None,
                     lambda d: current(d) and cond(d, "KindReady").get("status") == "False",
                     started=ctl.start)
    c.faults("DELETE")

    c.kubectl("apply", "-f", rgd_file)
    cap.save("rgd-active", "Ready", "rgd", "web-app", None, ready)

    # A later generation that does not compile; the first keeps serving.
    c.kubectl("apply", "-f", "-", stdin=rgd_variant(rgd, "web-app-rejected", "RejectedWebApp"))
    cap.wait("Ready", "rgd", "web-app-rejected", None, ready)
    c.kubectl("apply", "-f", "-",
              stdin=rgd_variant(rgd, "web-app-rejected", "RejectedWebApp", cycle=True))
    cap.save("rgd-graph-rejected", "refused at generation 2", "rgd", "web-app-rejected", None,
             lambda d: d["metadata"]["generation"] == 2 and current(d) and
             cond(d, "GraphAccepted").get("status") == "False")

    c.kubectl("apply", "-f", "-",
              stdin=rgd_variant(rgd, "web-app-invalid", "InvalidWebApp", cycle=True))
    cap.save("rgd-graph-invalid", "refused", "rgd", "web-app-invalid", None,
             lambda d: current(d) and cond(d, "GraphAccepted").get("status") == "False")


def resource_state(doc, id_):
    for r in (doc.get("status") or {}).get("resources") or []:
        if r.get("id") == id_:
            return r.get("state")
    return None


def capture_instances(cap, c, ctl):
    names = ["reconciling", "ready", "not-ready", "suspended", "deleting", "stale-generation",
             "deleting-controller-stopped"]
    docs = [webapp("shop-" + n) for n in names]
    # Not a valid object name: the API server refuses the Deployment.
    docs.append(webapp_named("shop-stalled", "shop_stalled"))
    c.kubectl("apply", "-f", "-", stdin="---\n".join(docs))

    cap.save("instance-reconciling", "converging", "webapp", "shop-reconciling", NS,
             lambda d: current(d) and cond(d, "Reconciling").get("status") == "True" and
             resource_state(d, "deployment") == "PENDING")
    cap.save("instance-stalled", "Stalled", "webapp", "shop-stalled", NS,
             lambda d: current(d) and cond(d, "Stalled").get("status") == "True")
    for n in names:
        cap.wait("Ready", "webapp", "shop-" + n, NS, ready)
    cap.save("instance-ready", "Ready", "webapp", "shop-ready", NS, ready)

    c.kubectl("patch", "webapp", "shop-not-ready", "-n", NS, "--type=merge", "-p",
              '{"spec":{"replicas":4}}')
    cap.save("instance-not-ready", "rolling out generation 2", "webapp", "shop-not-ready", NS,
             lambda d: d["metadata"]["generation"] == 2 and current(d) and
             cond(d, "Ready").get("status") == "False")

    c.kubectl("annotate", "webapp", "shop-suspended", "-n", NS, "kiln.dev/reconcile=suspended")
    cap.save("instance-suspended", "suspended", "webapp", "shop-suspended", NS,
             lambda d: current(d) and cond(d, "Ready").get("reason") == "Suspended")

    # Another controller's finalizer on the last wave holds kiln's deletion.
    c.kubectl("patch", "ingress", "shop-deleting", "-n", NS, "--type=merge", "-p",
              json.dumps({"metadata": {"finalizers": [HOLD]}}))
    c.kubectl("delete", "webapp", "shop-deleting", "-n", NS, "--wait=false")
    cap.save("instance-deleting", "deleting", "webapp", "shop-deleting", NS,
             lambda d: (d.get("status") or {}).get("state") == "DELETING")

    ctl.stop()
    c.kubectl("patch", "webapp", "shop-stale-generation", "-n", NS, "--type=merge", "-p",
              '{"spec":{"replicas":4}}')
    cap.save("instance-stale-generation", "stale", "webapp", "shop-stale-generation", NS,
             lambda d: d["metadata"]["generation"] == 2)
    c.kubectl("apply", "-f", "-", stdin=webapp("shop-new"))
    cap.save("instance-new", "created", "webapp", "shop-new", NS, lambda d: True)
    c.kubectl("delete", "webapp", "shop-deleting-controller-stopped", "-n", NS, "--wait=false")
    cap.save("instance-deleting-controller-stopped", "deleting", "webapp",
             "shop-deleting-controller-stopped", NS,
             lambda d: "deletionTimestamp" in d["metadata"])


def capture(kiln, src, outdir):
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(kiln, tmp, ["--kubelet-delay", str(KUBELET_DELAY_MS)])
        ctl = Controller(kiln, c, os.path.join(tmp, "controller.log"))
        try:
            c.kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\n"
                      f"metadata: {{name: {NS}}}\n")
            c.kubectl("apply", "-f",
                      os.path.join(src, "crds/resourcegraphdefinitions.kiln.dev.yaml"))
            cap = Capture(c, ctl, outdir)
            capture_rgds(cap, c, ctl, src)
            capture_instances(cap, c, ctl)
        finally:
            try:
                ctl.stop()
            finally:
                c.stop()


def normalize(doc):
    """Drops what the server or the clock makes up per run."""
    m = doc.get("metadata", {})
    for k in ("uid", "creationTimestamp", "resourceVersion", "managedFields"):
        m.pop(k, None)
    if "deletionTimestamp" in m:
        m["deletionTimestamp"] = "<set>"
    st = doc.get("status")
    if isinstance(st, dict):
        for c in st.get("conditions") or []:
            if "lastTransitionTime" in c:
                c["lastTransitionTime"] = "<time>"
        if "endpoint" in st:
            st["endpoint"] = "<cluster IP>"
    return doc


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    kiln, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    testdata = os.path.join(src, "deploy/argocd/testdata")
    if "--check" not in sys.argv[3:]:
        capture(kiln, src, testdata)
        return
    with tempfile.TemporaryDirectory() as out:
        capture(kiln, src, out)
        bad = []
        # A checked-in object this capture no longer makes is stale too.
        for f in sorted(os.listdir(testdata)):
            if f.startswith(("instance-", "rgd-")) and not os.path.exists(os.path.join(out, f)):
                bad.append(f + " (not captured any more)")
        for f in sorted(os.listdir(out)):
            got = normalize(yaml.safe_load(open(os.path.join(out, f))))
            path = os.path.join(testdata, f)
            want = normalize(yaml.safe_load(open(path))) if os.path.exists(path) else None
            if got != want:
                bad.append(f)
                diff = difflib.unified_diff(
                    yaml.safe_dump(want).splitlines(), yaml.safe_dump(got).splitlines(),
                    "checked-in/" + f, "captured/" + f, lineterm="")
                print("\n".join(diff))
        if bad:
            sys.exit("testdata differs from a fresh capture: " + ", ".join(bad) +
                     "\nregenerate with: tests/deploy/capture_health_testdata.py KILN .")
        print(f"ok: {len(os.listdir(out))} objects match a fresh capture")


if __name__ == "__main__":
    main()
