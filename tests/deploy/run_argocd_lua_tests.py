#!/usr/bin/python3
"""Run kiln's Argo CD Lua scripts against their test files under lua5.1.

usage: run_argocd_lua_tests.py SOURCE_DIR health|application|actions|sandbox

health       deploy/argocd/health_test.yaml against deploy/argocd/health.lua
application  deploy/argocd/application_health_test.yaml against application-health.lua
sandbox      the sandbox itself refuses the string, math and io libraries
actions      deploy/argocd/actions/action_test.yaml (discoveryTests, actionTests)

Each script runs in tests/deploy/argocd_sandbox.lua, which gives it the
libraries Argo CD gives an argocd-cm script without useOpenLibs. Every case
that fails is listed; the exit status is 1 if any did.
"""
import json
import os
import subprocess
import sys
import tempfile

import yaml

LUA = "lua5.1"
# Fixed "now" for actions that stamp a time: 2026-11-26T12:00:00Z.
NOW = "1795694400"


def lua_literal(v):
    """The object as a Lua table constructor (what Argo CD hands the script)."""
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        # Lua 5.1 has decimal byte escapes only; UTF-8 passes through as bytes.
        return '"' + "".join(chr(b) if chr(b).isalnum() or chr(b) in " -_./:" else "\\%03d" % b
                             for b in v.encode()) + '"'
    if isinstance(v, list):
        return "{" + ", ".join(lua_literal(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("[%s] = %s" % (lua_literal(str(k)), lua_literal(x))
                               for k, x in v.items()) + "}"
    raise TypeError(type(v))


def run(src, script, obj):
    sandbox = os.path.join(src, "tests/deploy/argocd_sandbox.lua")
    r = subprocess.run([LUA, sandbox, script, NOW], input=lua_literal(obj),
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return json.loads(r.stdout), None


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def same(a, b):
    """Equal as Kubernetes objects: {} and [] alike (Lua cannot tell them apart)."""
    if a in ({}, []) and b in ({}, []):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def health(src, script, tests_file):
    base = os.path.dirname(tests_file)
    failures, n = [], 0
    for case in load(tests_file)["tests"]:
        n += 1
        path = case["inputPath"]
        got, err = run(src, script, load(os.path.join(base, path)))
        want = case["healthStatus"]
        if err:
            failures.append(f"{path}: script failed: {err}")
        elif got.get("status") != want["status"] or got.get("message", "") != want.get(
                "message", ""):
            failures.append(f"{path}: got {got}, want {want}")
    return n, failures


def actions(src):
    adir = os.path.join(src, "deploy/argocd/actions")
    spec = load(os.path.join(adir, "action_test.yaml"))
    failures, n = [], 0
    for case in spec.get("discoveryTests", []):
        n += 1
        path = case["inputPath"]
        got, err = run(src, os.path.join(adir, "discovery.lua"), load(os.path.join(adir, path)))
        if err:
            failures.append(f"discovery {path}: script failed: {err}")
            continue
        got_list = sorted(({"name": k, "disabled": bool(v.get("disabled", False))}
                           for k, v in got.items()), key=lambda x: x["name"])
        want = sorted(({"name": x["name"], "disabled": bool(x.get("disabled", False))}
                       for x in case["result"]), key=lambda x: x["name"])
        if got_list != want:
            failures.append(f"discovery {path}: got {got_list}, want {want}")
        for name in got:
            if not os.path.exists(os.path.join(adir, name, "action.lua")):
                failures.append(f"discovery {path}: action {name} has no {name}/action.lua")
    for case in spec.get("actionTests", []):
        n += 1
        path, action = case["inputPath"], case["action"]
        got, err = run(src, os.path.join(adir, action, "action.lua"),
                       load(os.path.join(adir, path)))
        if err:
            failures.append(f"action {action} on {path}: script failed: {err}")
            continue
        want = load(os.path.join(adir, case["expectedOutputPath"]))
        if not same(got, want):
            failures.append(f"action {action} on {path}: output differs from "
                            f"{case['expectedOutputPath']}:\n{yaml.safe_dump(got)}")
    return n, failures


def selftest(src):
    """The sandbox must refuse what Argo CD refuses, or the health cases prove nothing."""
    cases = [
        ("return string.format('%d', 1)", False),
        ("local s = 'abc' return s:upper()", False),
        ("return math.floor(1.5)", False),
        ("return io.read()", False),
        ("return {status = obj.kind .. tostring(2), n = #obj.items}", True),
        ("local os = require('os') return {t = os.date('!%Y', os.time())}", True),
        ("table.insert(obj.items, 3) return obj.items", True),
        ("while true do end", False),
    ]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (code, should_work) in enumerate(cases):
            path = os.path.join(tmp, f"s{i}.lua")
            with open(path, "w") as f:
                f.write(code)
            got, err = run(src, path, {"kind": "X", "items": [1, 2]})
            if (err is None) != should_work:
                failures.append(f"sandbox: {code!r}: " +
                                (f"failed: {err}" if err else f"ran and returned {got}"))
    return len(cases), failures


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, what = sys.argv[1], sys.argv[2]
    argocd = os.path.join(src, "deploy/argocd")
    if what == "health":
        n, failures = health(src, os.path.join(argocd, "health.lua"),
                             os.path.join(argocd, "health_test.yaml"))
    elif what == "application":
        n, failures = health(src, os.path.join(argocd, "application-health.lua"),
                             os.path.join(argocd, "application_health_test.yaml"))
    elif what == "actions":
        n, failures = actions(src)
    elif what == "sandbox":
        n, failures = selftest(src)
    else:
        sys.exit(__doc__)
    for f in failures:
        print("FAIL " + f)
    if n == 0:
        sys.exit("no cases found")
    print(f"{n - len(failures)}/{n} cases passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
