#!/usr/bin/python3
"""The Argo CD plugin (deploy/argocd/plugin.yaml) renders what `kiln render` does.

usage: check_cmp.py KILN SOURCE_DIR

Runs plugin.yaml's generate command the way the Argo CD sidecar does (in the
application directory, kiln on PATH, ARGOCD_ENV_* from the Application) on
every example, and checks:
- a directory with an RGD and its instances renders byte for byte what
  `kiln render -f rgd.yaml -f instance.yaml` prints (and the example's golden
  expected.yaml);
- ARGOCD_ENV_KILN_RGD (RGD kept elsewhere) and ARGOCD_ENV_KILN_FILES work;
- a broken recipe, an empty directory and an RGD without instances exit
  non-zero with nothing on stdout.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml


def main():
    kiln, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    plugin = yaml.safe_load(open(os.path.join(src, "deploy/argocd/plugin.yaml")))
    assert plugin["kind"] == "ConfigManagementPlugin", plugin["kind"]
    gen = plugin["spec"]["generate"]
    argv = gen["command"] + gen.get("args", [])
    bindir = tempfile.mkdtemp()
    os.symlink(kiln, os.path.join(bindir, "kiln"))
    failures = []

    def generate(cwd, **env):
        e = {"PATH": bindir + ":/usr/bin:/bin", "ARGOCD_APP_NAME": "test",
             "ARGOCD_APP_NAMESPACE": "default"}
        e.update({"ARGOCD_ENV_" + k: v for k, v in env.items()})
        return subprocess.run(argv, cwd=cwd, env=e, capture_output=True, text=True)

    def render(*files):
        args = [kiln, "render"]
        for f in files:
            args += ["-f", f]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout

    examples = sorted(d for d in os.listdir(os.path.join(src, "examples"))
                      if os.path.exists(os.path.join(src, "examples", d, "rgd.yaml")))
    with tempfile.TemporaryDirectory() as tmp:
        for ex in examples:
            exdir = os.path.join(src, "examples", ex)
            want = render(os.path.join(exdir, "rgd.yaml"), os.path.join(exdir, "instance.yaml"))
            golden = open(os.path.join(exdir, "expected.yaml")).read()
            if want != golden:
                failures.append(f"{ex}: kiln render differs from expected.yaml")
            app = os.path.join(tmp, ex)
            os.mkdir(app)
            shutil.copy(os.path.join(exdir, "rgd.yaml"), app)
            shutil.copy(os.path.join(exdir, "instance.yaml"), app)
            cases = [
                ("directory", app, {}),
                ("KILN_FILES", exdir, {"KILN_FILES": "rgd.yaml instance.yaml"}),
                ("KILN_RGD", os.path.join(tmp, ex + "-instances"),
                 {"KILN_RGD": os.path.join("..", ex, "rgd.yaml")}),
            ]
            os.mkdir(os.path.join(tmp, ex + "-instances"))
            shutil.copy(os.path.join(exdir, "instance.yaml"), os.path.join(tmp, ex + "-instances"))
            for label, cwd, env in cases:
                r = generate(cwd, **env)
                if r.returncode != 0 or r.stdout != want:
                    failures.append(f"{ex} ({label}): exit {r.returncode}, stdout "
                                    f"{'matches' if r.stdout == want else 'differs'}; "
                                    f"stderr: {r.stderr.strip()[:300]}")

        # Failures: nothing on stdout, non-zero exit.
        broken = os.path.join(tmp, "broken")
        os.mkdir(broken)
        shutil.copy(os.path.join(src, "examples/web-app/instance.yaml"), broken)
        rgd = open(os.path.join(src, "examples/web-app/rgd.yaml")).read()
        # A dependency cycle: the Deployment now reads the Service.
        rgd = rgd.replace("${schema.spec.replicas}", "${service.spec.ports[1].port}", 1)
        open(os.path.join(broken, "rgd.yaml"), "w").write(rgd)
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        lonely = os.path.join(tmp, "rgd-only")
        os.mkdir(lonely)
        shutil.copy(os.path.join(src, "examples/web-app/rgd.yaml"), lonely)
        for label, cwd in (("broken recipe", broken), ("empty directory", empty),
                           ("RGD without instances", lonely)):
            r = generate(cwd)
            if r.returncode == 0 or r.stdout != "":
                failures.append(f"{label}: exit {r.returncode}, {len(r.stdout)} bytes on stdout")
            elif not r.stderr.strip():
                failures.append(f"{label}: no message on stderr")
    shutil.rmtree(bindir)
    for f in failures:
        print("FAIL " + f)
    if failures:
        sys.exit(1)
    print(f"ok: {len(examples)} examples render as kiln render does; failures print nothing")


if __name__ == "__main__":
    main()
