#!/usr/bin/python3
"""Offline checks of kiln's deployment manifests and images.

usage: check_deploy.py SOURCE_DIR CHECK [ARGS]

  kustomize VERSION   deploy/ renders with `kubectl kustomize` (base, the
                      unrestricted overlay, the servicemonitor and rgd-service-accounts
                      components);
                      deploy/kiln.yaml is that render; the CRD copy matches
                      crds/; the Deployment has the controller's flags, probes,
                      ports and the restricted security context; the image tag
                      is the project VERSION.
  rbac KILN           an RBAC evaluator over deploy/kiln.yaml (bindings,
                      aggregation) grants the controller's ServiceAccount every
                      request the controller makes and every verb it applies
                      children with, for every kind the examples and recipes
                      render; nothing more dangerous than listed; the
                      gpucheck ServiceAccount has no rights.
  dockerfiles [KILN]  deploy/Dockerfile and deploy/gpucheck.Dockerfile install
                      scripts/deps.sh's build packages and run the README's
                      build; the runtime packages are the -dev packages'
                      libraries (and cover what KILN links, when given).
  yaml                every YAML file under deploy/ parses; objects are named.

Exit status 1 with every problem listed, 0 when all hold.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

problems = []


def fail(msg):
    problems.append(msg)


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def kustomize(path):
    r = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"kubectl kustomize {path}: {r.stderr.strip()}")
        return ""
    return r.stdout


def find(objs, kind, name):
    for o in objs:
        if o.get("kind") == kind and o["metadata"].get("name") == name:
            return o
    return None


# ---------------------------------------------------------------- kustomize

def flag_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def with_component(deploy, name):
    """deploy/ rendered with one of its components, the way a user adds it."""
    with tempfile.TemporaryDirectory() as tmp:
        rel = os.path.relpath(deploy, tmp)
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                    f"resources:\n- {rel}\ncomponents:\n- {rel}/components/{name}\n")
        return docs(kustomize(tmp))


def check_kustomize(src, version):
    deploy = os.path.join(src, "deploy")
    text = kustomize(deploy)
    if not text:
        return
    kiln_yaml = os.path.join(deploy, "kiln.yaml")
    if not os.path.exists(kiln_yaml) or open(kiln_yaml).read() != text:
        fail("deploy/kiln.yaml is not `kubectl kustomize deploy/`: run deploy/update.sh")
    objs = docs(text)

    crds = os.path.join(src, "crds")
    for f in sorted(os.listdir(crds)):
        copy = os.path.join(deploy, "base/crds", f)
        if not os.path.exists(copy) or open(copy).read() != open(os.path.join(crds, f)).read():
            fail(f"deploy/base/crds/{f} differs from crds/{f}: run deploy/update.sh")
        crd = yaml.safe_load(open(os.path.join(crds, f)))
        if not find(objs, "CustomResourceDefinition", crd["metadata"]["name"]):
            fail(f"the render lacks CRD {crd['metadata']['name']}")

    ns = find(objs, "Namespace", "kiln-system")
    if not ns:
        fail("no Namespace kiln-system")
    elif ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
        fail("kiln-system does not enforce the restricted Pod Security Standard")
    for o in objs:
        if o["kind"] in ("Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"):
            if o["metadata"].get("namespace") != "kiln-system":
                fail(f"{o['kind']} {o['metadata']['name']} is not in kiln-system")

    dep = find(objs, "Deployment", "kiln-controller")
    if not dep:
        fail("no Deployment kiln-controller")
        return
    if dep["spec"].get("replicas") != 1:
        fail("the Deployment should run 1 replica")
    pod = dep["spec"]["template"]["spec"]
    if pod.get("serviceAccountName") != "kiln-controller":
        fail("the Deployment does not run as ServiceAccount kiln-controller")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail("pod securityContext: runAsNonRoot and seccompProfile RuntimeDefault required")
    (c,) = pod["containers"]
    if c["image"] != f"ghcr.io/kiln-dev/kiln:{version}":
        fail(f"image {c['image']}: expected tag {version} (the project VERSION)")
    args = c.get("args", [])
    if not args or args[0] != "controller":
        fail(f"the container must run `kiln controller`, args are {args}")
    if "--leader-elect" not in args:
        fail("leader election is off")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    metrics, health = flag_value(args, "--metrics-bind-address"), \
        flag_value(args, "--health-probe-bind-address")
    if metrics != f":{ports.get('metrics')}":
        fail(f"--metrics-bind-address {metrics} does not match the metrics port {ports}")
    if health != f":{ports.get('health')}":
        fail(f"--health-probe-bind-address {health} does not match the health port {ports}")
    if flag_value(args, "--log-format") != "json":
        fail("logs should be JSON in the cluster")
    if flag_value(args, "--leader-election-id") not in (None, "kiln-controller"):
        fail("leader election id should be kiln-controller")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("health", ports.get("health")):
            fail(f"{probe} must GET {path} on the health port, has {get}")
    sc = c.get("securityContext", {})
    want = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
    for k, v in want.items():
        if sc.get(k) is not v:
            fail(f"container securityContext.{k} must be {v}")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        fail("container must drop ALL capabilities")
    if not c.get("resources", {}).get("requests") or not c["resources"].get("limits", {}).get("memory"):
        fail("container needs resource requests and a memory limit")

    svc = find(objs, "Service", "kiln-controller-metrics")
    if not svc:
        fail("no metrics Service")
    else:
        sel = svc["spec"]["selector"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            fail("the metrics Service does not select the controller pods")
        if [p.get("targetPort") for p in svc["spec"]["ports"]] != ["metrics"]:
            fail("the metrics Service must target the metrics port")

    # The unrestricted overlay.
    un = docs(kustomize(os.path.join(deploy, "overlays/unrestricted")))
    role = find(un, "ClusterRole", "kiln-children-unrestricted")
    if not role or role["rules"] != [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}] \
            or role["metadata"]["labels"].get("rbac.kiln.dev/aggregate-to-controller") != "true":
        fail("overlays/unrestricted: no aggregated ClusterRole granting everything")
    if len(un) != len(objs) + 1:
        fail("overlays/unrestricted should be the base plus one ClusterRole")

    # The ServiceMonitor component, the way a user adds it.
    withsm = with_component(deploy, "servicemonitor")
    sm = find(withsm, "ServiceMonitor", "kiln-controller")
    if not sm:
        fail("components/servicemonitor adds no ServiceMonitor")
    elif svc:
        sel = sm["spec"]["selector"]["matchLabels"]
        if any(svc["metadata"]["labels"].get(k) != v for k, v in sel.items()):
            fail("the ServiceMonitor does not select the metrics Service")
        if sm["spec"]["endpoints"][0].get("port") != "metrics":
            fail("the ServiceMonitor must scrape the port named metrics")

    # The per-RGD service account component: impersonation, aggregated into
    # the controller's rules, and nothing else.
    withsa = with_component(deploy, "rgd-service-accounts")
    imp = find(withsa, "ClusterRole", "kiln-impersonate-rgd-service-accounts")
    if not imp or imp["rules"] != [{"apiGroups": [""], "resources": ["serviceaccounts"],
                                    "verbs": ["impersonate"]}] \
            or imp["metadata"]["labels"].get("rbac.kiln.dev/aggregate-to-controller") != "true":
        fail("components/rgd-service-accounts: no aggregated ClusterRole granting only "
             "impersonate on serviceaccounts")
    if len(withsa) != len(objs) + 1:
        fail("components/rgd-service-accounts should add one ClusterRole")


# --------------------------------------------------------------------- rbac

VERBS_CHILD = ["get", "list", "watch", "create", "update", "patch", "delete"]


def guess_resource(kind):
    """The plural Kubernetes picks when a CRD names none (and for built-ins)."""
    k = kind.lower()
    if k.endswith(("s", "x", "z", "ch", "sh")):
        return k + "es"
    if k.endswith("y") and len(k) > 1 and k[-2] not in "aeiou":
        return k[:-1] + "ies"
    return k + "s"


class Rbac:
    def __init__(self, objs):
        self.objs = objs
        self.cluster_roles = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRole"}
        self.roles = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                      for o in objs if o["kind"] == "Role"}

    def cluster_role_rules(self, name):
        role = self.cluster_roles.get(name)
        if role is None:
            return []
        if "aggregationRule" not in role:
            return role.get("rules") or []
        # What the aggregation controller does: union of the selected roles.
        rules = []
        for sel in role["aggregationRule"]["clusterRoleSelectors"]:
            want = sel.get("matchLabels", {})
            for other in self.cluster_roles.values():
                labels = other["metadata"].get("labels", {})
                if other is not role and all(labels.get(k) == v for k, v in want.items()):
                    rules += other.get("rules") or []
        return rules

    def subject_rules(self, sa_ns, sa_name):
        """[(namespace or None for cluster-wide, rule)] for a ServiceAccount."""
        out = []
        for b in self.objs:
            if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and
                       s.get("namespace", b["metadata"].get("namespace")) == sa_ns
                       for s in b.get("subjects") or []):
                continue
            ref = b["roleRef"]
            ns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
            if ref["kind"] == "ClusterRole":
                rules = self.cluster_role_rules(ref["name"])
            else:
                rules = self.roles.get((ns, ref["name"]), {}).get("rules") or []
            out += [(ns, r) for r in rules]
        return out


def allows(rules, ns, group, resource, verb):
    for rns, r in rules:
        if rns is not None and rns != ns:
            continue
        if group not in r.get("apiGroups", []) and "*" not in r.get("apiGroups", []):
            continue
        res = r.get("resources", [])
        base, _, sub = resource.partition("/")
        if not (resource in res or "*" in res or (sub and f"*/{sub}" in res)):
            continue
        if verb in r.get("verbs", []) or "*" in r.get("verbs", []):
            return True
    return False


def rendered_children(kiln, src):
    """Every object the examples and recipes render: [(where, object)].

    A directory with rgd.yaml and instance.yaml is one recipe; so is a
    *.rgd.yaml with instances in *.instance.yaml next to it or under examples/.
    A recipe that does not render is noted, not failed: its own golden tests
    own that; this test is about permissions."""
    pairs = []
    for top in ("examples", "recipes"):
        base = os.path.join(src, top)
        if not os.path.isdir(base):
            continue
        for root, _, files in os.walk(base):
            if "rgd.yaml" in files and "instance.yaml" in files:
                pairs.append((os.path.join(root, "rgd.yaml"), os.path.join(root, "instance.yaml")))
            for f in files:
                if not f.endswith(".rgd.yaml"):
                    continue
                for d in (root, os.path.join(root, "examples")):
                    if os.path.isdir(d):
                        pairs += [(os.path.join(root, f), os.path.join(d, i))
                                  for i in sorted(os.listdir(d)) if i.endswith(".instance.yaml")]
    out, rendered = [], 0
    for rgd, inst in sorted(pairs):
        where = os.path.relpath(inst, src)
        r = subprocess.run([kiln, "render", "-f", rgd, "-f", inst], capture_output=True, text=True)
        if r.returncode != 0:
            first = r.stderr.strip().splitlines()[0] if r.stderr.strip() else "no message"
            print(f"note: {where} does not render, its kinds are not checked: {first}")
            continue
        rendered += 1
        out += [(where, o) for o in docs(r.stdout)]
    return out, rendered


# Every request the controller makes on its own behalf (DESIGN.md sections
# 2, 3 and 5, and the deployment's flags): (namespace or None, group,
# resource, verbs). WebApp stands for any kind an RGD generates.
CONTROLLER_REQUESTS = [
    (None, "kiln.dev", "resourcegraphdefinitions", ["get", "list", "watch", "update", "patch"]),
    (None, "kiln.dev", "resourcegraphdefinitions/status", ["update", "patch"]),
    (None, "kiln.dev", "resourcegraphdefinitions/finalizers", ["update"]),
    (None, "kiln.dev", "webapps", ["get", "list", "watch", "update", "patch"]),
    (None, "kiln.dev", "webapps/status", ["update", "patch"]),
    (None, "kiln.dev", "webapps/finalizers", ["update"]),
    (None, "apiextensions.k8s.io", "customresourcedefinitions",
     ["get", "list", "watch", "create", "update", "patch"]),
    ("team-a", "", "events", ["create", "patch"]),
    ("team-a", "events.k8s.io", "events", ["create", "patch"]),
    (None, "", "nodes", ["get", "list", "watch"]),
    ("kiln-system", "batch", "jobs", ["get", "list", "watch", "create", "delete"]),
    ("kiln-system", "", "pods", ["get", "list", "watch"]),
    ("team-a", "", "serviceaccounts", ["create", "patch"]),
    ("kiln-system", "coordination.k8s.io", "leases", ["get", "create", "update"]),
]

# The children kinds of the shipped recipes (DESIGN.md section 6): the
# ready-made roles must cover them whether or not a recipe renders them here.
RECIPE_KINDS = [
    ("apps", "Deployment"), ("apps", "StatefulSet"), ("", "Service"), ("", "ConfigMap"),
    ("", "Secret"), ("", "ServiceAccount"), ("", "PersistentVolumeClaim"),
    ("networking.k8s.io", "Ingress"), ("gateway.networking.k8s.io", "HTTPRoute"),
    ("gateway.networking.k8s.io", "Gateway"), ("inference.networking.k8s.io", "InferencePool"),
    ("inference.networking.x-k8s.io", "InferencePool"),
    ("inference.networking.x-k8s.io", "InferenceModel"),
    ("inference.networking.x-k8s.io", "InferenceObjective"),
    ("llm-d.ai", "InferenceObjective"), ("llm-d.ai", "InferenceModelRewrite"),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"), ("argoproj.io", "Application"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"), ("source.toolkit.fluxcd.io", "HelmRepository"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"), ("source.toolkit.fluxcd.io", "GitRepository"),
    ("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "RoleBinding"),
    ("serving.kserve.io", "InferenceService"), ("serving.kserve.io", "LLMInferenceService"),
    ("autoscaling", "HorizontalPodAutoscaler"), ("monitoring.coreos.com", "ServiceMonitor"),
    ("monitoring.coreos.com", "PodMonitor"),
]

# Rights the base install must not give: they would let an RGD author use
# kiln to exceed kiln's own rules, or read what it never needs.
FORBIDDEN = [
    (None, "rbac.authorization.k8s.io", "roles", "escalate"),
    (None, "rbac.authorization.k8s.io", "clusterroles", "escalate"),
    (None, "rbac.authorization.k8s.io", "roles", "bind"),
    (None, "rbac.authorization.k8s.io", "clusterroles", "bind"),
    (None, "rbac.authorization.k8s.io", "clusterroles", "create"),
    (None, "rbac.authorization.k8s.io", "clusterrolebindings", "create"),
    (None, "", "serviceaccounts", "impersonate"),
    (None, "", "users", "impersonate"),
    (None, "apiextensions.k8s.io", "customresourcedefinitions", "delete"),
    (None, "", "namespaces", "delete"),
    (None, "", "nodes", "patch"),
    (None, "", "pods", "create"),
    (None, "", "pods/exec", "create"),
    (None, "kiln.dev", "resourcegraphdefinitions/status", "delete"),
    ("kube-system", "coordination.k8s.io", "leases", "update"),
    (None, "apps", "daemonsets", "create"),
]


def check_rbac(src, kiln):
    objs = docs(open(os.path.join(src, "deploy/kiln.yaml")).read())
    rbac = Rbac(objs)
    rules = rbac.subject_rules("kiln-system", "kiln-controller")
    if not rules:
        fail("the controller's ServiceAccount is bound to nothing")
    for ns, group, res, verbs in CONTROLLER_REQUESTS:
        for v in verbs:
            if not allows(rules, ns, group, res, v):
                fail(f"controller cannot {v} {group or 'core'}/{res}" + (f" in {ns}" if ns else ""))
    children, n = rendered_children(kiln, src)
    if n == 0:
        fail("no example or recipe renders")
    kinds = {(g, k, "recipes (DESIGN.md section 6)") for g, k in RECIPE_KINDS}
    kinds |= {(o["apiVersion"].rpartition("/")[0], o["kind"], where) for where, o in children}
    for group, kind, where in sorted(kinds):
        res = guess_resource(kind)
        for v in VERBS_CHILD:
            # Children may land in any namespace of the instance's choosing.
            if not allows(rules, "some-namespace", group, res, v):
                fail(f"{where}: controller cannot {v} {group or 'core'}/{res} ({kind}); "
                     "add a ClusterRole labelled rbac.kiln.dev/aggregate-to-controller")
    # Kubernetes refuses a Role that grants more than its creator holds (no
    # escalate here), so every Role a recipe renders must be within kiln's rules.
    for where, o in children:
        if o["kind"] != "Role":
            continue
        ns = o["metadata"].get("namespace", "default")
        for rule in o.get("rules") or []:
            for g in rule.get("apiGroups", []):
                for res in rule.get("resources", []):
                    for v in rule.get("verbs", []):
                        if not allows(rules, ns, g, res, v):
                            fail(f"{where}: Role {o['metadata']['name']} grants {v} "
                                 f"{g or 'core'}/{res}, which kiln does not hold (escalation)")
    for ns, group, res, verb in FORBIDDEN:
        if allows(rules, ns or "some-namespace", group, res, verb):
            fail(f"the base install lets the controller {verb} {group or 'core'}/{res}")
    for r in (o for o in objs if o["kind"] in ("ClusterRole", "Role")):
        for rule in r.get("rules") or []:
            if "*" in rule.get("verbs", []) or "*" in rule.get("apiGroups", []):
                fail(f"{r['kind']} {r['metadata']['name']} has a wildcard verb or group")

    gpu = find(objs, "ServiceAccount", "kiln-gpucheck")
    if not gpu or gpu.get("automountServiceAccountToken") is not False:
        fail("ServiceAccount kiln-gpucheck must exist with automountServiceAccountToken: false")
    if rbac.subject_rules("kiln-system", "kiln-gpucheck"):
        fail("ServiceAccount kiln-gpucheck must have no API rights")

    # The unrestricted overlay really grants everything, through aggregation.
    un = Rbac(docs(kustomize(os.path.join(src, "deploy/overlays/unrestricted"))))
    urules = un.subject_rules("kiln-system", "kiln-controller")
    if not allows(urules, "x", "example.com", "widgets", "delete"):
        fail("overlays/unrestricted does not let kiln write any kind")


# -------------------------------------------------------------- dockerfiles

# Packages scripts/deps.sh installs for tests, formatting, fuzzing and the
# dev cluster's client tests and the HTTP/2 server of kube/mux; an image build
# needs none of them.
TEST_ONLY = {"libcmocka-dev", "clang", "libclang-rt-14-dev", "clang-format", "lua5.1", "python3",
             "python3-kubernetes", "python3-yaml", "nghttp2-server", "openssl"}


def deps_packages(src):
    text = open(os.path.join(src, "scripts/deps.sh")).read()
    m = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M)
    if not m:
        fail("scripts/deps.sh: no packages=( ... ) list")
        return []
    return [p for p in re.sub(r"#.*", "", m.group(1)).split()]


def dockerfile_stages(path):
    """[(from, [(instruction, text)])] with continuation lines joined."""
    lines, cur = [], ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if not cur and (line.strip().startswith("#") or not line.strip()):
            continue
        if line.strip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        lines.append(cur + line)
        cur = ""
    stages = []
    for line in lines:
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append((rest.strip(), []))
        elif stages:
            stages[-1][1].append((instr, rest.strip()))
    return stages


def apt_installs(stage):
    pkgs = []
    for instr, text in stage[1]:
        if instr != "RUN":
            continue
        for part in text.split("&&"):
            words = shlex.split(part)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def runs(stage):
    return [text for instr, text in stage[1] if instr == "RUN"]


def dev_runtime_libs(dev):
    """The shared-library packages a -dev package depends on (Debian's dpkg data)."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", dev], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    names = [re.split(r"[ (:]", d.strip())[0] for d in r.stdout.split(",")]
    return [n for n in names if re.match(r"^lib.*\d", n) and not n.endswith("-dev")]


def needed_packages(binary):
    """Debian packages that hold the libraries BINARY links directly."""
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    out = set()
    for soname in re.findall(r"\(NEEDED\).*\[(.+)\]", r.stdout):
        path = paths.get(soname)
        if path is None:
            fail(f"{binary}: ldd does not resolve {soname}")
            continue
        # Merged /usr: dpkg may know the file under either prefix.
        candidates = [path, path.replace("/usr/lib/", "/lib/", 1), path.replace("/lib/", "/usr/lib/", 1)]
        for p in candidates:
            q = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
            if q.returncode == 0:
                out.add(q.stdout.split(":")[0])
                break
        else:
            fail(f"{binary}: no Debian package holds {path}")
    return out


def check_dockerfiles(src, kiln):
    readme = open(os.path.join(src, "README.md")).read()
    if "scripts/build.sh build" not in readme:
        fail("README.md no longer builds with `scripts/build.sh build`; update the Dockerfiles")
    deps = deps_packages(src)
    build_pkgs = [p for p in deps if p not in TEST_ONLY]
    if not build_pkgs:
        return
    for name, final_base, binary, runtime in (
            ("Dockerfile", "debian:12-slim", "kiln", None),
            ("gpucheck.Dockerfile", "nvidia/cuda:${CUDA_VERSION}-runtime-${CUDA_OS}",
             "kiln-gpucheck", {"libjansson4", "libyaml-0-2", "libssl3t64"})):
        path = os.path.join(src, "deploy", name)
        stages = dockerfile_stages(path)
        if len(stages) != 2:
            fail(f"{name}: expected a build stage and a final stage, found {len(stages)}")
            continue
        build, final = stages
        got = apt_installs(build)
        if sorted(got) != sorted(build_pkgs):
            fail(f"{name}: build packages {sorted(got)} != scripts/deps.sh's build packages "
                 f"{sorted(build_pkgs)}")
        if not any(re.search(r"(^|\s|&&)scripts/build\.sh build(\s|$)", r) for r in runs(build)):
            fail(f"{name}: the build stage does not run `scripts/build.sh build` (the README's build)")
        if ("COPY", ". .") not in build[1]:
            fail(f"{name}: the build stage must copy the source tree")
        if final[0] != final_base:
            fail(f"{name}: final stage is FROM {final[0]}, expected {final_base}")
        copies = [t for i, t in final[1] if i == "COPY"]
        if copies != [f"--from=build /src/build/bin/{binary} /usr/local/bin/{binary}"]:
            fail(f"{name}: the final stage must copy only build/bin/{binary}, copies {copies}")
        users = [t for i, t in final[1] if i == "USER"]
        if not users or users[-1].split(":")[0] in ("0", "root") or \
                not users[-1].split(":")[0].isdigit():
            fail(f"{name}: the final stage must end as a numeric non-root USER, has {users}")
        entry = [t for i, t in final[1] if i == "ENTRYPOINT"]
        if entry != [f'["/usr/local/bin/{binary}"]']:
            fail(f"{name}: ENTRYPOINT must be /usr/local/bin/{binary}, is {entry}")
        rt = set(apt_installs(final))
        if runtime is not None:
            if rt != runtime:
                fail(f"{name}: runtime packages {sorted(rt)} != {sorted(runtime)}")
            continue
        # Debian: the runtime packages are exactly the libraries of the -dev
        # packages built against, plus CA certificates.
        want = {"ca-certificates"}
        for dev in build_pkgs:
            if dev.endswith("-dev"):
                libs = dev_runtime_libs(dev)
                if libs is None:
                    fail(f"{name}: {dev} is not installed here; cannot derive its runtime library")
                    continue
                want |= set(libs)
        if rt != want:
            fail(f"{name}: runtime packages {sorted(rt)} != the -dev packages' libraries "
                 f"{sorted(want)}")
        if kiln and os.path.exists(kiln):
            # A sanitizer build links the sanitizer runtimes; release images never do.
            sanitizers = {"libasan8", "libubsan1", "liblsan0", "libtsan2"}
            missing = needed_packages(kiln) - rt - {"libc6"} - sanitizers
            if missing:
                fail(f"{name}: {kiln} links libraries from {sorted(missing)}, "
                     "which the final stage does not install")


# --------------------------------------------------------------------- yaml

def check_yaml(src):
    deploy = os.path.join(src, "deploy")
    n = 0
    for root, _, files in os.walk(deploy):
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)
            try:
                ds = docs(open(path).read())
            except yaml.YAMLError as e:
                fail(f"{rel}: {e}")
                continue
            n += 1
            for i, d in enumerate(ds):
                if not isinstance(d, dict):
                    fail(f"{rel}: document {i + 1} is not a mapping")
                elif d.get("kind") in ("Kustomization", "Component"):
                    continue
                elif "apiVersion" in d or "kind" in d:
                    if not d.get("apiVersion") or not d.get("kind") or \
                            not (d.get("metadata") or {}).get("name"):
                        fail(f"{rel}: document {i + 1} lacks apiVersion, kind or metadata.name")
    if n == 0:
        fail("no YAML under deploy/")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, what, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if what == "kustomize" and rest:
        check_kustomize(src, rest[0])
    elif what == "rbac" and rest:
        check_rbac(src, os.path.abspath(rest[0]))
    elif what == "dockerfiles":
        check_dockerfiles(src, rest[0] if rest else None)
    elif what == "yaml":
        check_yaml(src)
    else:
        sys.exit(__doc__)
    for p in problems:
        print("FAIL " + p)
    if problems:
        sys.exit(1)
    print(f"ok: {what}")


if __name__ == "__main__":
    main()
