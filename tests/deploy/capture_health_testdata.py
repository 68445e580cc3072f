#!/usr/bin/python3
"""Capture the Argo CD health check's test objects from the kiln dev cluster.

usage: capture_health_testdata.py KILN SOURCE_DIR [--check]

Starts `KILN dev`, installs kiln's RGD CRD and the web-app example (its RGD and
the CRD `kiln crd` generates for it), then puts one object in each state the
health check must tell apart and saves `kubectl get -o yaml` of it under
deploy/argocd/testdata/. The controller does not write these statuses here:
each is written through the status subresource in the shape DESIGN.md section
3 gives (and the RGD status of section 2), so the objects are what the API
server stores and serves, with generation, finalizers and deletionTimestamp
set by the server itself. Replace them with statuses the controller wrote once
`kiln dev` runs it.

--check captures into a temporary directory and compares with the checked-in
files, ignoring what differs on every run (uid, timestamps the server sets,
resourceVersion).
"""
import copy
import os
import subprocess
import sys
import tempfile
import time

import yaml

T0 = "2026-11-26T12:00:00Z"
T1 = "2026-11-26T12:00:07Z"
T2 = "2026-11-26T12:03:41Z"

HEADER = ("# kubectl get -o yaml from the kiln dev cluster, captured by\n"
          "# tests/deploy/capture_health_testdata.py; the status was written through the\n"
          "# status subresource in kiln's shape (DESIGN.md section 3), not by the controller.\n")


def cond(type_, status, reason, message, gen, t=T0):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": gen, "lastTransitionTime": t}


def resources(dep_state, dep_msg, svc_state="READY", ing_state="READY"):
    return [
        {"id": "deployment", "kind": "Deployment", "name": "NAME", "namespace": "team-a",
         "state": dep_state, "message": dep_msg},
        {"id": "service", "kind": "Service", "name": "NAME", "namespace": "team-a",
         "state": svc_state, "message": ""},
        {"id": "ingress", "kind": "Ingress", "name": "NAME", "namespace": "team-a",
         "state": ing_state, "message": ""},
    ]


def ready_status(gen, t=T1, reconciling=False):
    """A Ready instance; with reconciling, one that is applying a change while ready."""
    s = {
        "observedGeneration": gen,
        "state": "ACTIVE",
        "conditions": [
            cond("Ready", "True", "Reconciled", "3/3 resources ready", gen, t),
            cond("Reconciling", "False", "Reconciled", "", gen, t),
            cond("Stalled", "False", "Reconciled", "", gen, T0),
            cond("GraphResolved", "True", "Resolved", "3 resources resolved", gen, T0),
            cond("ResourcesReady", "True", "AllReady", "3/3 resources ready", gen, t),
            cond("Validated", "True", "NoValidation", "the graph has no validation node", gen, T0),
        ],
        "resources": resources("READY", "3/3 replicas available"),
        "endpoint": "10.96.14.2",
        "availableReplicas": 3,
    }
    if reconciling:
        s["conditions"][1] = cond("Reconciling", "True", "Applying",
                                  "applying resources: 1/3 changed", gen, T2)
    return s


# name -> how to build it. "status" may hold NAME, replaced by the object's name.
INSTANCES = {
    "instance-new": {},
    "instance-reconciling": {"status": {
        "observedGeneration": 1,
        "state": "IN_PROGRESS",
        "conditions": [
            cond("Ready", "Unknown", "Reconciling", "applying resources: 1/3 applied", 1),
            cond("Reconciling", "True", "Applying", "applying resources: 1/3 applied", 1),
            cond("Stalled", "False", "Reconciling", "", 1),
            cond("GraphResolved", "True", "Resolved", "3 resources resolved", 1),
            cond("ResourcesReady", "Unknown", "Applying", "1/3 resources applied", 1),
            cond("Validated", "True", "NoValidation", "the graph has no validation node", 1),
        ],
        "resources": resources("IN_PROGRESS", "applied", "PENDING", "PENDING"),
    }},
    "instance-not-ready": {"status": {
        "observedGeneration": 1,
        "state": "IN_PROGRESS",
        "conditions": [
            cond("Ready", "False", "ResourcesNotReady",
                 "deployment NAME: 1/3 replicas available", 1, T1),
            cond("Reconciling", "False", "Waiting", "", 1, T1),
            cond("Stalled", "False", "Reconciling", "", 1),
            cond("GraphResolved", "True", "Resolved", "3 resources resolved", 1),
            cond("ResourcesReady", "False", "NotReady",
                 "deployment NAME: 1/3 replicas available", 1, T1),
            cond("Validated", "True", "NoValidation", "the graph has no validation node", 1),
        ],
        "resources": resources("IN_PROGRESS", "1/3 replicas available"),
        "endpoint": "10.96.14.2",
        "availableReplicas": 1,
    }},
    "instance-ready": {"status": ready_status(1)},
    "instance-reconciling-while-ready": {"status": ready_status(1, reconciling=True)},
    "instance-stalled": {"status": {
        "observedGeneration": 1,
        "state": "ERROR",
        "conditions": [
            cond("Ready", "False", "ConfigurationError",
                 "resources[0].template.spec.replicas: expected integer, got string \"two\"", 1),
            cond("Reconciling", "False", "ConfigurationError", "", 1),
            cond("Stalled", "True", "ConfigurationError",
                 "resources[0].template.spec.replicas: expected integer, got string \"two\"", 1),
            cond("GraphResolved", "False", "ConfigurationError",
                 "resources[0].template.spec.replicas: expected integer, got string \"two\"", 1),
            cond("ResourcesReady", "Unknown", "ConfigurationError", "", 1),
            cond("Validated", "Unknown", "ConfigurationError", "", 1),
        ],
        "resources": [],
    }},
    "instance-suspended": {"annotations": {"kiln.dev/reconcile": "suspended"},
                           "status": ready_status(1)},
    "instance-stale-generation": {"status": ready_status(1), "bump": True},
    "instance-deleting": {"delete": True, "status": {
        "observedGeneration": 1,
        "state": "DELETING",
        "conditions": [
            cond("Ready", "False", "Deleting", "deleting 2 resources", 1, T2),
            cond("Reconciling", "True", "Deleting", "deleting 2 resources", 1, T2),
            cond("Stalled", "False", "Deleting", "", 1),
            cond("GraphResolved", "True", "Resolved", "3 resources resolved", 1),
            cond("ResourcesReady", "False", "Deleting", "deleting 2 resources", 1, T2),
            cond("Validated", "True", "NoValidation", "the graph has no validation node", 1),
        ],
        "resources": resources("DELETING", "deleting", "DELETING", "DELETED"),
    }},
}

RGD_ORDER = ["deployment", "service", "ingress"]
RGD_RES = [{"id": "deployment", "dependsOn": []}, {"id": "service", "dependsOn": ["deployment"]},
           {"id": "ingress", "dependsOn": ["service"]}]

RGDS = {
    "rgd-active": {"status": {
        "observedGeneration": 1, "state": "Active",
        "topologicalOrder": RGD_ORDER, "resources": RGD_RES,
        "conditions": [
            cond("GraphAccepted", "True", "Accepted", "3 resources, 0 errors", 1),
            cond("KindReady", "True", "Established", "CRD webapps.kiln.dev is Established", 1),
            cond("ControllerReady", "True", "Running", "watching kiln.dev/v1alpha1 WebApp", 1),
            cond("Ready", "True", "Ready", "serving kiln.dev/v1alpha1 WebApp", 1),
        ]}},
    "rgd-kind-pending": {"status": {
        "observedGeneration": 1, "state": "Inactive",
        "topologicalOrder": RGD_ORDER, "resources": RGD_RES,
        "conditions": [
            cond("GraphAccepted", "True", "Accepted", "3 resources, 0 errors", 1),
            cond("KindReady", "False", "Establishing",
                 "waiting for CRD webapps.kiln.dev to be Established", 1),
            cond("ControllerReady", "False", "Waiting", "waiting for the kind", 1),
            cond("Ready", "False", "KindNotReady",
                 "waiting for CRD webapps.kiln.dev to be Established", 1),
        ]}},
    "rgd-graph-rejected": {"bump": True, "status": {
        "observedGeneration": 2, "state": "Active",
        "topologicalOrder": RGD_ORDER, "resources": RGD_RES,
        "conditions": [
            cond("GraphAccepted", "False", "InvalidGraph",
                 "cycle: service -> ingress -> service (serving the last accepted graph)", 2, T2),
            cond("KindReady", "True", "Established", "CRD webapps.kiln.dev is Established", 1),
            cond("ControllerReady", "True", "Running", "watching kiln.dev/v1alpha1 WebApp", 1),
            cond("Ready", "True", "Ready", "serving kiln.dev/v1alpha1 WebApp", 1),
        ]}},
}


def subst(v, name):
    if isinstance(v, str):
        return v.replace("NAME", name)
    if isinstance(v, list):
        return [subst(x, name) for x in v]
    if isinstance(v, dict):
        return {k: subst(x, name) for k, x in v.items()}
    return v


class Cluster:
    def __init__(self, kiln, tmp):
        self.env = dict(os.environ, KUBECONFIG=os.path.join(tmp, "kubeconfig"))
        self.log = open(os.path.join(tmp, "dev.log"), "w")
        self.out = os.path.join(tmp, "dev.out")
        self.proc = subprocess.Popen(
            [kiln, "dev", "--no-controller", "--kubeconfig", self.env["KUBECONFIG"],
             "--log-level", "warn"],
            stdout=open(self.out, "w"), stderr=self.log, cwd=tmp)
        for _ in range(100):
            if os.path.exists(self.env["KUBECONFIG"]) and "listening" in open(self.out).read():
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

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def capture(kiln, src, outdir):
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(kiln, tmp)
        try:
            c.kubectl("apply", "-f", os.path.join(src, "crds/resourcegraphdefinitions.kiln.dev.yaml"))
            rgd_file = os.path.join(src, "examples/web-app/rgd.yaml")
            crd = subprocess.run([kiln, "crd", rgd_file], capture_output=True, text=True,
                                 check=True).stdout
            c.kubectl("apply", "-f", "-", stdin=crd)
            c.kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\n"
                      "metadata: {name: team-a}\n")
            rgd = yaml.safe_load(open(rgd_file))
            for case, how in INSTANCES.items():
                name = "shop-" + case.split("-", 1)[1]
                obj = {"apiVersion": "kiln.dev/v1alpha1", "kind": "WebApp",
                       "metadata": {"name": name, "namespace": "team-a"},
                       "spec": {"name": name, "image": "ghcr.io/example/shop:2.4.1",
                                "replicas": 3, "ingress": {"enabled": True,
                                                           "host": "shop.example.com"}}}
                if "annotations" in how:
                    obj["metadata"]["annotations"] = how["annotations"]
                if how.get("delete"):
                    obj["metadata"]["finalizers"] = ["kiln.dev/finalizer"]
                save(c, outdir, case, "webapp", name, obj, how)
            for case, how in RGDS.items():
                obj = copy.deepcopy(rgd)
                obj["metadata"]["name"] = "web-app-" + case.split("-", 1)[1]
                obj["spec"]["schema"]["kind"] = "WebApp"
                save(c, outdir, case, "resourcegraphdefinition", obj["metadata"]["name"], obj,
                     how)
        finally:
            c.stop()


def save(c, outdir, case, resource, name, obj, how):
    ns = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
    c.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))
    if "status" in how:
        status = {"status": subst(how["status"], name)}
        c.kubectl("patch", resource, name, *ns, "--subresource=status", "--type=merge", "-p",
                  yaml.safe_dump(status))
    if how.get("bump"):
        # A spec change the controller has not seen: generation moves on.
        if resource == "webapp":
            patch = '{"spec":{"replicas":4}}'
        else:
            patch = '{"spec":{"schema":{"spec":{"replicas":"integer | default=2 minimum=0"}}}}'
        c.kubectl("patch", resource, name, *ns, "--type=merge", "-p", patch)
    if how.get("delete"):
        c.kubectl("delete", resource, name, *ns, "--wait=false")
    text = c.kubectl("get", resource, name, *ns, "-o", "yaml")
    with open(os.path.join(outdir, case + ".yaml"), "w") as f:
        f.write(HEADER + text)
    if how.get("delete"):
        c.kubectl("patch", resource, name, *ns, "--type=json", "-p",
                  '[{"op":"remove","path":"/metadata/finalizers"}]')


def normalize(doc):
    m = doc.get("metadata", {})
    for k in ("uid", "creationTimestamp", "resourceVersion"):
        m.pop(k, None)
    if "deletionTimestamp" in m:
        m["deletionTimestamp"] = "<set>"
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
        for f in sorted(os.listdir(out)):
            got = normalize(yaml.safe_load(open(os.path.join(out, f))))
            path = os.path.join(testdata, f)
            want = normalize(yaml.safe_load(open(path))) if os.path.exists(path) else None
            if got != want:
                bad.append(f)
        if bad:
            sys.exit("testdata differs from a fresh capture: " + ", ".join(bad) +
                     "\nregenerate with: tests/deploy/capture_health_testdata.py KILN .")
        print(f"ok: {len(os.listdir(out))} objects match a fresh capture")


if __name__ == "__main__":
    main()
