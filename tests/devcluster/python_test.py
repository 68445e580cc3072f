#!/usr/bin/python3
"""The dev cluster driven by python3-kubernetes (Debian's /usr/bin/python3) and
raw HTTP: dynamic-client CRUD, watch resume, 410 and relist, bad input,
faults, simulated GPUs, durability across restart and SIGKILL.

Usage: python_test.py <dev cluster command...>
"""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

try:
    from kubernetes import config, dynamic
    from kubernetes.client import api_client
    from kubernetes.dynamic.exceptions import ApiException
except ImportError:
    print("SKIP: python3-kubernetes is not installed for", sys.executable)
    sys.exit(77)

CMD = sys.argv[1:]
sys.argv = sys.argv[:1]

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "default": "blue"},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                    }},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}},
        }],
    },
}


def widget(name, size, **spec):
    spec["size"] = size
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def kubeconfig_token(text):
    return [l.split(":", 1)[1].strip() for l in text.splitlines() if l.strip().startswith("token:")][0]


LIVE = []


def stop_all():
    for proc in LIVE:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(stop_all)
# A killed test (a CTest timeout) still stops its servers.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Server:
    def __init__(self, *flags, data_dir=None):
        self.dir = tempfile.mkdtemp(prefix="kiln-dc-py.")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        args = CMD + ["--port", "0", "--kubeconfig", self.kubeconfig, "--log-level", "warn"]
        if data_dir:
            args += ["--data-dir", data_dir]
        self.err = open(os.path.join(self.dir, "err"), "w")
        self.proc = subprocess.Popen(args + list(flags), stdout=subprocess.PIPE, stderr=self.err,
                                     text=True)
        LIVE.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith(("kiln dev cluster listening on http://127.0.0.1:",
                                "kiln dev cluster listening on https://127.0.0.1:")):
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return r.status, doc, r

    def client(self):
        return dynamic.DynamicClient(api_client.ApiClient(
            configuration=config.load_kube_config(config_file=self.kubeconfig)))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


class DevClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--simulate-gpus", "h100x8:2,a100x4", "--history", "200",
                         "--bookmark-interval", "200")
        st, _, _ = cls.srv.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                   CRD)
        assert st == 201, st
        cls.dyn = cls.srv.client()
        cls.api = cls.dyn.resources.get(api_version="example.com/v1", kind="Widget")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, "server exit status %d after SIGTERM" % rc

    def stream(self, query, lines, timeout=5):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=timeout)
        c.request("GET", "/apis/example.com/v1/namespaces/default/widgets?" + query)
        r = c.getresponse()
        out = []
        if r.status != 200:
            out.append(json.loads(r.read()))
        else:
            for _ in range(lines):
                line = r.readline()
                if not line:
                    break
                out.append(json.loads(line))
        c.close()
        return r.status, out

    def test_bookmarks_timeout_and_initial_events(self):
        api = self.api
        api.create(body=widget("bm", 1), namespace="default")
        t0 = time.time()
        st, evs = self.stream("watch=true&allowWatchBookmarks=true&timeoutSeconds=1&"
                              "resourceVersion=0", 10)
        self.assertEqual(st, 200)
        self.assertLess(time.time() - t0, 3)  # timeoutSeconds ends the stream
        kinds = [e["type"] for e in evs]
        self.assertEqual(kinds[0], "ADDED")
        self.assertIn("BOOKMARK", kinds)
        bm = evs[kinds.index("BOOKMARK")]["object"]
        self.assertEqual((bm["kind"], bm["apiVersion"]), ("Widget", "example.com/v1"))
        self.assertRegex(bm["metadata"]["resourceVersion"], r"^[0-9]+$")
        st, evs = self.stream("watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                              "&allowWatchBookmarks=true&timeoutSeconds=1", 2)
        names = [e["object"]["metadata"]["name"] for e in evs if e["type"] == "ADDED"]
        self.assertIn("bm", names)
        st, evs = self.stream("watch=true&sendInitialEvents=true&resourceVersionMatch="
                              "NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1&"
                              "fieldSelector=metadata.name%3Dbm", 2)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "BOOKMARK"])
        self.assertEqual(evs[1]["object"]["metadata"]["annotations"],
                         {"k8s.io/initial-events-end": "true"})
        st, evs = self.stream("watch=true&sendInitialEvents=true", 1)
        self.assertEqual((st, evs[0]["reason"]), (422, "Invalid"))
        api.delete(name="bm", namespace="default")

    def test_crud_dynamic_client(self):
        api = self.api
        o = api.create(body=widget("crud", 2), namespace="default")
        self.assertEqual(o.spec.color, "blue")  # schema default on create
        self.assertEqual(o.metadata.generation, 1)
        self.assertRegex(o.metadata.uid, r"^[0-9a-f-]{36}$")
        got = api.get(name="crud", namespace="default")
        self.assertEqual(got.metadata.resourceVersion, o.metadata.resourceVersion)
        body = got.to_dict()
        body["spec"]["size"] = 5
        upd = api.replace(body=body, namespace="default")
        self.assertEqual(upd.spec.size, 5)
        self.assertEqual(upd.metadata.generation, 2)
        self.assertGreater(int(upd.metadata.resourceVersion), int(o.metadata.resourceVersion))
        # A stale resourceVersion is a 409 Conflict.
        with self.assertRaises(ApiException) as cm:
            api.replace(body=body, namespace="default")
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(json.loads(cm.exception.body)["reason"], "Conflict")
        p = api.patch(name="crud", namespace="default", body={"spec": {"size": 6}},
                      content_type="application/merge-patch+json")
        self.assertEqual(p.spec.size, 6)
        lst = api.get(namespace="default")
        self.assertIn("crud", [i.metadata.name for i in lst.items])
        api.delete(name="crud", namespace="default")
        with self.assertRaises(ApiException) as cm:
            api.get(name="crud", namespace="default")
        self.assertEqual(cm.exception.status, 404)

    def test_invalid_custom_resource_422(self):
        with self.assertRaises(ApiException) as cm:
            self.api.create(body=widget("bad", 20, tags=["a", "b", "c"]), namespace="default")
        self.assertEqual(cm.exception.status, 422)
        st = json.loads(cm.exception.body)
        self.assertEqual(st["reason"], "Invalid")
        self.assertEqual(st["details"]["kind"], "Widget")
        causes = sorted((c["field"], c["reason"]) for c in st["details"]["causes"])
        self.assertEqual(causes, [("spec.size", "FieldValueInvalid"),
                                  ("spec.tags", "FieldValueTooMany")])
        with self.assertRaises(ApiException) as cm:
            self.api.create(body={"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"name": "nosize"}, "spec": {}},
                            namespace="default")
        self.assertEqual(json.loads(cm.exception.body)["details"]["causes"],
                         [{"reason": "FieldValueRequired", "message": "Required value",
                           "field": "spec.size"}])

    def test_watch_resume_misses_nothing(self):
        api = self.api
        first = api.create(body=widget("w-0", 1), namespace="default")
        rv = first.metadata.resourceVersion
        for i in range(1, 6):
            api.create(body=widget("w-%d" % i, 1), namespace="default")
        api.patch(name="w-0", namespace="default", body={"spec": {"size": 9}},
                  content_type="application/merge-patch+json")
        api.delete(name="w-1", namespace="default")
        seen = []
        for ev in api.watch(namespace="default", resource_version=rv, timeout=1):
            name = ev["object"]["metadata"]["name"]
            if name.startswith("w-"):
                seen.append((ev["type"], name))
        self.assertEqual(seen, [("ADDED", "w-1"), ("ADDED", "w-2"), ("ADDED", "w-3"),
                                ("ADDED", "w-4"), ("ADDED", "w-5"), ("MODIFIED", "w-0"),
                                ("DELETED", "w-1")])
        for i in range(6):
            try:
                api.delete(name="w-%d" % i, namespace="default")
            except ApiException:
                pass

    def test_expired_resource_version_410_then_relist(self):
        api = self.api
        o = api.create(body=widget("old", 1), namespace="default")
        old_rv = o.metadata.resourceVersion
        # History is 200 events; push the old RV out of it.
        for i in range(210):
            self.srv.request("POST", "/api/v1/namespaces/default/configmaps",
                             {"metadata": {"name": "churn-%d" % i}})
        with self.assertRaises(ApiException) as cm:
            for _ in api.watch(namespace="default", resource_version=old_rv, timeout=2):
                pass
        self.assertEqual(cm.exception.status, 410)
        lst = api.get(namespace="default")
        names = [i.metadata.name for i in lst.items]
        self.assertIn("old", names)
        api.patch(name="old", namespace="default", body={"spec": {"size": 2}},
                  content_type="application/merge-patch+json")
        events = [(e["type"], e["object"]["metadata"]["name"])
                  for e in api.watch(namespace="default",
                                     resource_version=lst.metadata.resourceVersion, timeout=1)]
        self.assertEqual(events, [("MODIFIED", "old")])
        self.srv.request("DELETE", "/api/v1/namespaces/default/configmaps?labelSelector=")
        api.delete(name="old", namespace="default")

    def test_bad_input_always_gets_a_status(self):
        s = self.srv
        st, doc, _ = s.request("POST", "/api/v1/namespaces/default/configmaps", "{not json")
        self.assertEqual((st, doc["kind"], doc["reason"]), (400, "Status", "BadRequest"))
        st, doc, _ = s.request("POST", "/api/v1/namespaces/default/configmaps", "[1,2]")
        self.assertEqual((st, doc["reason"]), (400, "BadRequest"))
        st, doc, _ = s.request("POST", "/api/v1/namespaces/default/configmaps", "a: b",
                               {"Content-Type": "application/vnd.kubernetes.protobuf"})
        self.assertEqual((st, doc["reason"]), (415, "UnsupportedMediaType"))
        st, doc, _ = s.request("PATCH", "/api/v1/namespaces/default/configmaps/x", "{}",
                               {"Content-Type": "text/plain"})
        self.assertEqual((st, doc["reason"]), (415, "UnsupportedMediaType"))
        big = json.dumps({"metadata": {"name": "big"}, "data": {"a": "x" * (4 << 20)}})
        st, doc, _ = s.request("POST", "/api/v1/namespaces/default/configmaps", big)
        self.assertEqual((st, doc["reason"]), (413, "RequestEntityTooLarge"))
        st, doc, _ = s.request("GET", "/api/v1/nothing-here")
        self.assertEqual((st, doc["reason"]), (404, "NotFound"))
        st, doc, _ = s.request("GET", "/totally/unknown")
        self.assertEqual((st, doc["reason"]), (404, "NotFound"))
        st, doc, _ = s.request("POST", "/api/v1/namespaces/default/configmaps",
                               {"metadata": {"name": "Bad_Name"}})
        self.assertEqual((st, doc["reason"]), (422, "Invalid"))
        self.assertEqual(doc["details"]["causes"][0]["field"], "metadata.name")
        self.assertTrue(doc["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: '
                                                  'Invalid value: "Bad_Name": a lowercase RFC 1123'))
        st, doc, _ = s.request("POST", "/api/v1/namespaces/nope/configmaps",
                               {"metadata": {"name": "x"}})
        self.assertEqual((st, doc["message"]), (404, 'namespaces "nope" not found'))
        st, doc, _ = s.request("GET", "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(")
        self.assertEqual((st, doc["reason"]), (400, "BadRequest"))
        st, doc, _ = s.request("GET", "/api/v1/namespaces/default/configmaps?fieldSelector=spec.x%3D1")
        self.assertEqual((st, doc["message"]),
                         (400, "unable to parse requirement: field label not supported: spec.x"))
        # A raw garbage request line: the server answers or closes, and keeps serving.
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(b"\x00\xff GARBAGE\r\n\r\n")
        sock.settimeout(5)
        try:
            sock.recv(4096)
        except OSError:
            pass
        sock.close()
        st, _, _ = s.request("GET", "/readyz")
        self.assertEqual(st, 200)

    def test_watch_client_that_never_reads(self):
        s = self.srv
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\n"
                     b"Host: x\r\n\r\n")
        payload = "y" * 60000
        for i in range(60):
            st, _, _ = s.request("POST", "/api/v1/namespaces/default/configmaps",
                                 {"metadata": {"name": "flood-%d" % i}, "data": {"p": payload}})
            self.assertEqual(st, 201)
        st, doc, _ = s.request("GET", "/api/v1/namespaces/default/configmaps?limit=1")
        self.assertEqual(st, 200)
        sock.close()
        st, _, _ = s.request("DELETE", "/api/v1/namespaces/default/configmaps")
        self.assertEqual(st, 200)

    def test_list_limit_continue_and_selectors(self):
        s = self.srv
        for i in range(5):
            s.request("POST", "/api/v1/namespaces/default/secrets",
                      {"metadata": {"name": "s%d" % i, "labels": {"i": str(i % 2)}}})
        st, page, _ = s.request("GET", "/api/v1/namespaces/default/secrets?limit=2")
        self.assertEqual([i["metadata"]["name"] for i in page["items"]], ["s0", "s1"])
        tok = page["metadata"]["continue"]
        st, page2, _ = s.request("GET", "/api/v1/namespaces/default/secrets?limit=2&continue=" + tok)
        self.assertEqual([i["metadata"]["name"] for i in page2["items"]], ["s2", "s3"])
        self.assertEqual(page2["metadata"]["resourceVersion"], page["metadata"]["resourceVersion"])
        st, page3, _ = s.request("GET", "/api/v1/namespaces/default/secrets?limit=2&continue=" +
                                 page2["metadata"]["continue"])
        self.assertEqual([i["metadata"]["name"] for i in page3["items"]], ["s4"])
        self.assertNotIn("continue", page3["metadata"])
        st, sel, _ = s.request("GET", "/api/v1/namespaces/default/secrets?labelSelector=i%3D1")
        self.assertEqual([i["metadata"]["name"] for i in sel["items"]], ["s1", "s3"])
        st, sel, _ = s.request("GET", "/api/v1/secrets?fieldSelector=metadata.name%3Ds2")
        self.assertEqual([i["metadata"]["name"] for i in sel["items"]], ["s2"])
        st, _, _ = s.request("DELETE", "/api/v1/namespaces/default/secrets?labelSelector=i")
        st, rest, _ = s.request("GET", "/api/v1/namespaces/default/secrets")
        self.assertEqual(rest["items"], [])

    def test_faults(self):
        s = self.srv
        st, _, _ = s.request("POST", "/kiln/faults",
                             {"failNth": {"n": 2, "code": 429, "method": "GET",
                                          "pathPrefix": "/api/v1/namespaces/default/services",
                                          "retryAfterSeconds": 3}})
        self.assertEqual(st, 200)
        st, _, _ = s.request("GET", "/api/v1/namespaces/default/services")
        self.assertEqual(st, 200)
        st, doc, r = s.request("GET", "/api/v1/namespaces/default/services")
        self.assertEqual((st, doc["reason"], r.getheader("Retry-After")),
                         (429, "TooManyRequests", "3"))
        st, _, _ = s.request("GET", "/api/v1/namespaces/default/services")
        self.assertEqual(st, 200)
        s.request("POST", "/kiln/faults", {"failNth": {"n": 1, "code": 500, "method": "POST"}})
        st, doc, _ = s.request("POST", "/api/v1/namespaces/default/configmaps",
                               {"metadata": {"name": "f"}})
        self.assertEqual((st, doc["reason"]), (500, "InternalError"))
        s.request("POST", "/kiln/faults", {"expireNextWatch": True})
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        c.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")
        line = c.getresponse().readline()
        ev = json.loads(line)
        self.assertEqual((ev["type"], ev["object"]["code"], ev["object"]["reason"]),
                         ("ERROR", 410, "Expired"))
        c.close()
        s.request("POST", "/kiln/faults", {"delayMs": 300})
        t0 = time.time()
        s.request("GET", "/version")
        self.assertGreaterEqual(time.time() - t0, 0.3)
        s.request("DELETE", "/kiln/faults")
        # dropWatches ends an open watch.
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        c.request("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=0")
        resp = c.getresponse()
        s.request("POST", "/kiln/faults", {"dropWatches": True})
        self.assertEqual(resp.read(), b"")
        c.close()

    def test_simulated_gpu_nodes(self):
        st, nodes, _ = self.srv.request(
            "GET", "/api/v1/nodes?labelSelector=nvidia.com%2Fgpu.present%3Dtrue")
        got = sorted((n["metadata"]["name"], n["metadata"]["labels"]["nvidia.com/gpu.product"],
                      n["metadata"]["labels"]["nvidia.com/gpu.count"],
                      n["status"]["capacity"]["nvidia.com/gpu"],
                      n["metadata"]["labels"]["kiln.dev/simulated"]) for n in nodes["items"])
        self.assertEqual(got, [
            ("kiln-gpu-a100x4-0", "NVIDIA-A100-SXM4-80GB", "4", "4", "true"),
            ("kiln-gpu-h100x8-0", "NVIDIA-H100-80GB-HBM3", "8", "8", "true"),
            ("kiln-gpu-h100x8-1", "NVIDIA-H100-80GB-HBM3", "8", "8", "true"),
        ])

    def test_status_subresource_and_generation(self):
        s = self.srv
        base = "/apis/example.com/v1/namespaces/default/widgets"
        st, o, _ = s.request("POST", base, widget("st", 1))
        self.assertEqual(st, 201)
        # A main-resource write ignores status.
        o["status"] = {"phase": "x"}
        st, o2, _ = s.request("PUT", base + "/st", o)
        self.assertEqual((st, o2.get("status"), o2["metadata"]["generation"]), (200, None, 1))
        # A status write ignores spec and keeps generation.
        o2["status"] = {"phase": "ok"}
        o2["spec"]["size"] = 7
        st, o3, _ = s.request("PUT", base + "/st/status", o2)
        self.assertEqual((st, o3["status"], o3["spec"]["size"], o3["metadata"]["generation"]),
                         (200, {"phase": "ok"}, 1, 1))
        st, o4, _ = s.request("PATCH", base + "/st", {"spec": {"size": 2}},
                              {"Content-Type": "application/merge-patch+json"})
        self.assertEqual((o4["metadata"]["generation"], o4["status"]), (2, {"phase": "ok"}))
        s.request("DELETE", base + "/st")

    def test_foreground_deletion_waits_for_dependents(self):
        s = self.srv
        base = "/api/v1/namespaces/default/configmaps"
        st, owner, _ = s.request("POST", base, {"metadata": {"name": "fg-owner"}})
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "fg-owner",
               "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
        s.request("POST", base, {"metadata": {"name": "fg-dep", "ownerReferences": [ref],
                                              "finalizers": ["example.com/hold"]}})
        st, doc, _ = s.request("DELETE", base + "/fg-owner", {"propagationPolicy": "Foreground"})
        self.assertEqual((st, doc["metadata"]["finalizers"]), (200, ["foregroundDeletion"]))
        self.assertIn("deletionTimestamp", doc["metadata"])
        dep = wait_for(lambda: (s.request("GET", base + "/fg-dep")[1]["metadata"]
                                .get("deletionTimestamp")))
        self.assertTrue(dep)
        st, _, _ = s.request("GET", base + "/fg-owner")
        self.assertEqual(st, 200)  # held while the dependent exists
        s.request("PATCH", base + "/fg-dep", {"metadata": {"finalizers": None}},
                  {"Content-Type": "application/merge-patch+json"})
        self.assertTrue(wait_for(lambda: s.request("GET", base + "/fg-owner")[0] == 404))
        # Orphan keeps the dependent and strips its ownerReference.
        st, owner, _ = s.request("POST", base, {"metadata": {"name": "or-owner"}})
        ref["name"], ref["uid"] = "or-owner", owner["metadata"]["uid"]
        s.request("POST", base, {"metadata": {"name": "or-dep", "ownerReferences": [ref]}})
        s.request("DELETE", base + "/or-owner", {"propagationPolicy": "Orphan"})
        self.assertTrue(wait_for(lambda: s.request("GET", base + "/or-owner")[0] == 404))
        st, dep, _ = s.request("GET", base + "/or-dep")
        self.assertEqual((st, dep["metadata"].get("ownerReferences")), (200, None))
        s.request("DELETE", base + "/or-dep")

    def test_preconditions(self):
        s = self.srv
        base = "/api/v1/namespaces/default/configmaps"
        st, o, _ = s.request("POST", base, {"metadata": {"name": "pre"}})
        st, doc, _ = s.request("DELETE", base + "/pre", {"preconditions": {"uid": "nope"}})
        self.assertEqual((st, doc["reason"]), (409, "Conflict"))
        st, doc, _ = s.request("DELETE", base + "/pre",
                               {"preconditions": {"uid": o["metadata"]["uid"],
                                                  "resourceVersion": o["metadata"]["resourceVersion"]}})
        self.assertEqual((st, doc["status"], doc["details"]["uid"]),
                         (200, "Success", o["metadata"]["uid"]))


class DurabilityTest(unittest.TestCase):
    def test_restart_and_sigkill_mid_burst(self):
        data = tempfile.mkdtemp(prefix="kiln-dc-data.")
        try:
            srv = Server(data_dir=data)
            st, _, _ = srv.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                   CRD)
            self.assertEqual(st, 201)
            st, _, _ = srv.request("POST", "/apis/example.com/v1/namespaces/default/widgets",
                                   widget("keep", 3))
            self.assertEqual(st, 201)
            port = srv.port
            with open(srv.kubeconfig) as f:
                old_kubeconfig = f.read()
            token = kubeconfig_token(old_kubeconfig)
            self.assertEqual(srv.stop(), 0)
            # A small compaction threshold: the log is rewritten during the burst too.
            # The same port: the kubeconfig handed out before the restart stays valid.
            srv = Server("--wal-compact-bytes", "65536", "--port", str(port), data_dir=data)
            self.assertEqual(srv.port, port)
            with open(srv.kubeconfig) as f:
                self.assertEqual(f.read(), old_kubeconfig)
            self.assertEqual(os.stat(os.path.join(data, "token")).st_mode & 0o777, 0o600)
            st, doc, _ = srv.request("GET", "/apis/example.com/v1/namespaces/default/widgets/keep",
                                     headers={"Authorization": "Bearer " + token})
            self.assertEqual((st, doc["spec"]), (200, {"size": 3, "color": "blue"}))
            st, denied, _ = srv.request("GET", "/api/v1/namespaces",
                                        headers={"Authorization": "Bearer " + "0" * len(token)})
            self.assertEqual((st, denied["reason"]), (401, "Unauthorized"))
            rv_before = int(doc["metadata"]["resourceVersion"])
            # Burst from 4 writers; SIGKILL while they write.
            acked = []
            lock = threading.Lock()
            stop = threading.Event()

            def writer(w):
                i = 0
                while not stop.is_set():
                    name = "b-%d-%d" % (w, i)
                    try:
                        st, _, _ = srv.request("POST", "/api/v1/namespaces/default/configmaps",
                                               {"metadata": {"name": name}, "data": {"i": str(i)}},
                                               timeout=5)
                    except OSError:
                        return
                    if st == 201:
                        with lock:
                            acked.append(name)
                    i += 1
            threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: len(acked) >= 300, 20)
            srv.proc.kill()
            stop.set()
            for t in threads:
                t.join()
            self.assertEqual(srv.stop(signal.SIGKILL), -signal.SIGKILL)
            self.assertGreaterEqual(len(acked), 300)
            # The log was rewritten during the burst: its snapshot marker (the
            # counter line ending a snapshot) is newer than the restart's.
            with open(os.path.join(data, "wal.log")) as f:
                markers = [int(l.split()[1]) for l in f if l.endswith(" - v1 namespaces /\n")]
            self.assertEqual(len(markers), 1)
            self.assertGreater(markers[0], rv_before + 100)
            srv = Server(data_dir=data)
            with open(srv.kubeconfig) as f:
                self.assertEqual(kubeconfig_token(f.read()), token)
            st, lst, _ = srv.request("GET", "/api/v1/namespaces/default/configmaps",
                                     headers={"Authorization": "Bearer " + token})
            have = {i["metadata"]["name"] for i in lst["items"]}
            missing = [n for n in acked if n not in have]
            self.assertEqual(missing, [])
            st, doc, _ = srv.request("GET", "/apis/example.com/v1/namespaces/default/widgets/keep")
            self.assertEqual(st, 200)
            self.assertGreater(int(lst["metadata"]["resourceVersion"]), rv_before)
            self.assertEqual(srv.stop(), 0)
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def test_tls_kubeconfig_survives_restart(self):
        data = tempfile.mkdtemp(prefix="kiln-dc-data.")
        try:
            srv = Server("--tls", data_dir=data)
            port = srv.port
            kept = os.path.join(data, "kept.kubeconfig")
            shutil.copy(srv.kubeconfig, kept)
            self.assertEqual(srv.stop(signal.SIGKILL), -signal.SIGKILL)
            for name in ("token", "tls.crt", "tls.key"):
                self.assertEqual(os.stat(os.path.join(data, name)).st_mode & 0o777, 0o600, name)
            srv = Server("--tls", "--port", str(port), data_dir=data)
            # The client built from the first start's kubeconfig trusts the kept
            # certificate and sends the kept token.
            dyn = dynamic.DynamicClient(api_client.ApiClient(
                configuration=config.load_kube_config(config_file=kept)))
            ns = dyn.resources.get(api_version="v1", kind="Namespace").get(name="default")
            self.assertEqual(ns.metadata.name, "default")
            self.assertEqual(srv.stop(), 0)
            # A damaged file is an error that names it, never a silent new token.
            with open(os.path.join(data, "token"), "w") as f:
                f.write("abc\n")
            out = subprocess.run(CMD + ["--port", "0", "--data-dir", data, "--log-level", "warn"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertIn(os.path.join(data, "token") + ": not a dev cluster token", out.stderr)
        finally:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
