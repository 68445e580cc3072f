#!/usr/bin/python3
"""Build deploy/argocd/argocd-cm-patch.yaml from the Lua files next to it.

usage: argocd_cm.py SOURCE_DIR [--write]

Without --write, checks that the checked-in patch is what the Lua files give,
both byte for byte and as Argo CD reads it (the map under
resource.customizations, the actions document inside it), and exits 1 if not.
"""
import os
import sys

import yaml

ACTIONS = ["reconcile-now", "suspend", "resume", "revalidate"]
HEADER = """\
# Argo CD settings for kiln: merge into the argocd-cm ConfigMap (namespace argocd).
# Generated from health.lua, application-health.lua and actions/ by
# deploy/update.sh; do not edit by hand (tests/deploy checks it is current).
#
# - resource.customizations: health check and actions for every kiln.dev kind.
#   A wildcard kind is only possible in this map form (ConfigMap keys cannot
#   hold '*'). This key is ONE value: if your argocd-cm already sets
#   resource.customizations, add the "kiln.dev/*" entry to it instead of
#   applying this patch over it.
# - resource.customizations.health.argoproj.io_Application: health for child
#   Applications, so app-of-apps sync waves wait for them (README.md).
#
# No useOpenLibs: the scripts use only what Argo CD gives argocd-cm scripts.
"""


def indent(text, n):
    pad = " " * n
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def read(path):
    with open(path) as f:
        text = f.read()
    if not text.endswith("\n"):
        text += "\n"
    return text


def build(argocd):
    health = read(os.path.join(argocd, "health.lua"))
    app = read(os.path.join(argocd, "application-health.lua"))
    discovery = read(os.path.join(argocd, "actions/discovery.lua"))
    actions = "discovery.lua: |\n" + indent(discovery, 2) + "definitions:\n"
    for name in ACTIONS:
        body = read(os.path.join(argocd, "actions", name, "action.lua"))
        actions += f"- name: {name}\n  action.lua: |\n" + indent(body, 4)
    custom = ('"kiln.dev/*":\n  health.lua: |\n' + indent(health, 4) +
              "  actions: |\n" + indent(actions, 4))
    return (HEADER + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n"
            "  namespace: argocd\ndata:\n  resource.customizations: |\n" + indent(custom, 4) +
            "  resource.customizations.health.argoproj.io_Application: |\n" + indent(app, 4))


def check_semantics(argocd, text):
    """What Argo CD will read out of the patch equals the files."""
    problems = []
    data = yaml.safe_load(text)["data"]
    entry = yaml.safe_load(data["resource.customizations"])["kiln.dev/*"]
    if entry["health.lua"] != read(os.path.join(argocd, "health.lua")):
        problems.append("health.lua differs")
    if "health.lua.useOpenLibs" in entry:
        problems.append("useOpenLibs must stay off")
    actions = yaml.safe_load(entry["actions"])
    if actions["discovery.lua"] != read(os.path.join(argocd, "actions/discovery.lua")):
        problems.append("discovery.lua differs")
    names = [d["name"] for d in actions["definitions"]]
    on_disk = sorted(d for d in os.listdir(os.path.join(argocd, "actions"))
                     if os.path.exists(os.path.join(argocd, "actions", d, "action.lua")))
    if sorted(names) != on_disk:
        problems.append(f"definitions {names} != action directories {on_disk}")
    for d in actions["definitions"]:
        if d["action.lua"] != read(os.path.join(argocd, "actions", d["name"], "action.lua")):
            problems.append(f"{d['name']}/action.lua differs")
    if data["resource.customizations.health.argoproj.io_Application"] != read(
            os.path.join(argocd, "application-health.lua")):
        problems.append("application-health.lua differs")
    return problems


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    argocd = os.path.join(sys.argv[1], "deploy/argocd")
    path = os.path.join(argocd, "argocd-cm-patch.yaml")
    text = build(argocd)
    if "--write" in sys.argv[2:]:
        with open(path, "w") as f:
            f.write(text)
        return
    problems = check_semantics(argocd, text)
    current = open(path).read() if os.path.exists(path) else ""
    if current != text:
        problems.append("argocd-cm-patch.yaml is stale: run deploy/update.sh")
    else:
        problems += check_semantics(argocd, current)
    for p in problems:
        print("FAIL " + p)
    if problems:
        sys.exit(1)
    print("ok: argocd-cm-patch.yaml matches the Lua files")


if __name__ == "__main__":
    main()
