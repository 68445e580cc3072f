#!/usr/bin/python3
"""deploy/kiln.yaml applies cleanly to the kiln dev cluster.

usage: devcluster_apply.py KILN SOURCE_DIR

Starts `KILN dev` and, with the real kubectl: applies deploy/kiln.yaml
(client-side, then again server-side: the second apply must change nothing
it does not own), waits for the controller Deployment to be Available (the
dev cluster's simulated kubelet), checks the objects are served, applies the
unrestricted overlay with `kubectl apply -k`, and applies the Argo CD
ConfigMap patch and the CMP sidecar's ConfigMap as objects. RBAC itself is
tested by controller_rbac_test.sh (the controller as its ServiceAccount, the
dev cluster enforcing RBAC for impersonated requests) and, rule by rule, by
check_deploy.py rbac.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capture_health_testdata import Cluster  # noqa: E402


def main():
    kiln, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    deploy = os.path.join(src, "deploy")
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(kiln, tmp)
        try:
            out = c.kubectl("apply", "-f", os.path.join(deploy, "kiln.yaml"))
            print(out, end="")
            c.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                      os.path.join(deploy, "kiln.yaml"))
            c.kubectl("-n", "kiln-system", "wait", "--for=condition=Available", "--timeout=30s",
                      "deployment/kiln-controller")
            c.kubectl("get", "crd", "resourcegraphdefinitions.kiln.dev")
            c.kubectl("-n", "kiln-system", "get", "serviceaccount/kiln-controller",
                      "serviceaccount/kiln-gpucheck", "service/kiln-controller-metrics",
                      "role/kiln-leader-election", "rolebinding/kiln-leader-election")
            c.kubectl("get", "clusterrole/kiln-controller", "clusterrole/kiln-controller-children",
                      "clusterrolebinding/kiln-controller",
                      "clusterrolebinding/kiln-controller-children")
            # The CRD is served: an RGD can be created right after the install.
            c.kubectl("apply", "-f", os.path.join(src, "examples/web-app/rgd.yaml"))
            c.kubectl("get", "rgd", "web-app")
            out = c.kubectl("apply", "-k", os.path.join(deploy, "overlays/unrestricted"))
            if "clusterrole.rbac.authorization.k8s.io/kiln-children-unrestricted created" not in out:
                sys.exit("overlays/unrestricted did not create kiln-children-unrestricted:\n" + out)
            c.kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\n"
                      "metadata: {name: argocd}\n")
            c.kubectl("apply", "-f", os.path.join(deploy, "argocd/argocd-cm-patch.yaml"))
            cm = c.kubectl("-n", "argocd", "create", "configmap", "kiln-cmp-plugin",
                           "--from-file=plugin.yaml=" + os.path.join(deploy, "argocd/plugin.yaml"),
                           "--dry-run=client", "-o", "yaml")
            c.kubectl("apply", "-f", "-", stdin=cm)
            c.kubectl("-n", "argocd", "get", "configmap/argocd-cm", "configmap/kiln-cmp-plugin")
        finally:
            c.stop()
    print("ok: deploy/kiln.yaml and the overlay apply to the dev cluster")


if __name__ == "__main__":
    main()
