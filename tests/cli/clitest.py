#!/usr/bin/python3
"""End-to-end tests of the kiln command line: exact stdout, stderr and exit
status of the real binary.

usage: clitest.py KILN SOURCE_DIR VERSION CASE [ARG]

CASE is one of the functions named case_<name> below (dashes for
underscores). Expected outputs live in files (examples/*/expected.yaml,
tests/cli/expected/, tests/cli/fixtures/lint/*.out); with KILN_UPDATE_GOLDEN=1
in the environment a case rewrites the files it compares against instead of
failing, for regenerating them after a deliberate change (read the diff before
committing it).
"""
import difflib
import json
import os
import subprocess
import sys

KILN, SRC, VERSION = sys.argv[1], sys.argv[2], sys.argv[3]
CLI_DIR = os.path.join(SRC, "tests", "cli")
EXPECTED_DIR = os.path.join(CLI_DIR, "expected")
LINT_DIR = os.path.join(CLI_DIR, "fixtures", "lint")
RENDER_DIR = os.path.join(CLI_DIR, "fixtures", "render")
EXAMPLES = ["web-app", "fan-out", "script-node", "chain"]
UPDATE = os.environ.get("KILN_UPDATE_GOLDEN") == "1"

failures = []


def run(args, cwd=None, stdin=None):
    """Runs kiln; returns (status, stdout, stderr) as text."""
    p = subprocess.run([KILN] + args, cwd=cwd, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def same(what, want, got):
    if want == got:
        return True
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        "expected", "actual"))
    fail("%s differs:\n%s" % (what, diff or repr((want, got))))
    return False


def same_file(what, path, got):
    """Compares got with the file at path (or rewrites it in update mode)."""
    if UPDATE:
        with open(path, "w") as f:
            f.write(got)
        print("updated " + os.path.relpath(path, SRC))
        return True
    if not os.path.exists(path):
        fail("%s: %s is missing" % (what, os.path.relpath(path, SRC)))
        return False
    with open(path) as f:
        return same(what + " (vs " + os.path.relpath(path, SRC) + ")", f.read(), got)


def expect_status(what, want, got):
    if want != got:
        fail("%s: exit status %d, want %d" % (what, got, want))


def read(path):
    with open(path) as f:
        return f.read()


# --- render: examples --------------------------------------------------------

def case_golden(example):
    """The example renders to its checked-in expected.yaml, byte for byte,
    every time, with the exact notes on stderr."""
    d = os.path.join(SRC, "examples", example)
    args = ["render", "-f", "rgd.yaml", "-f", "instance.yaml"]
    status, out, err = run(args, cwd=d)
    expect_status("render " + example, 0, status)
    same_file("render %s stdout" % example, os.path.join(d, "expected.yaml"), out)
    same_file("render %s stderr" % example,
              os.path.join(EXPECTED_DIR, example + ".render.stderr"), err)
    status2, out2, err2 = run(args, cwd=d)
    if (status2, out2, err2) != (status, out, err):
        fail("render %s is not deterministic across runs" % example)
    # The same documents through stdin, in one stream.
    stream = read(os.path.join(d, "rgd.yaml")) + "\n---\n" + read(os.path.join(d, "instance.yaml"))
    status3, out3, _ = run(["render", "-f", "-"], cwd=d, stdin=stream.encode())
    expect_status("render %s from stdin" % example, 0, status3)
    same("render %s from stdin" % example, out, out3)


def case_render_json():
    """-o json prints one v1 List holding the same objects."""
    d = os.path.join(SRC, "examples", "web-app")
    status, out, err = run(["render", "-f", "rgd.yaml", "-f", "instance.yaml", "-o", "json"], cwd=d)
    expect_status("render -o json", 0, status)
    same_file("render -o json", os.path.join(EXPECTED_DIR, "web-app.render.json"), out)
    if not out.startswith('{\n  "apiVersion": "v1",\n  "items": ['):
        fail("render -o json does not start as a v1 List: %r" % out[:60])


def case_render_observed():
    """--observed matches objects by identity; reads of their status resolve,
    the pending notes about them go away, --status shows the projection, and
    an observed object of another namespace is reported as unmatched."""
    d = os.path.join(SRC, "examples", "chain")
    obs = os.path.join("..", "..", "tests", "cli", "fixtures", "render", "chain-observed")
    args = ["render", "-f", "rgd.yaml", "-f", "instance.yaml", "--observed", obs, "--status"]
    status, out, err = run(args, cwd=d)
    expect_status("render --observed", 0, status)
    same("render --observed stdout (same objects as without)", read(os.path.join(d, "expected.yaml")),
         out)
    same_file("render --observed stderr", os.path.join(EXPECTED_DIR, "chain.observed.stderr"), err)
    # Without observed objects the same projection is partial.
    status, out, err = run(["render", "-f", "rgd.yaml", "-f", "instance.yaml", "--status"], cwd=d)
    expect_status("render --status", 0, status)
    same_file("render --status stderr", os.path.join(EXPECTED_DIR, "chain.status.stderr"), err)


# --- render: the error contract -----------------------------------------------

# (name, args, cwd relative to SRC, stdin, exit status, exact stderr or None
# for "starts with 'kiln render: '"). On every error stdout stays empty.
RENDER_ERRORS = [
    ("malformed YAML", ["render", "-f", "fixtures/lint/malformed-yaml.yaml"], "tests/cli", None, 1,
     None),
    ("no RGD", ["render", "-f", "../../examples/chain/instance.yaml"], "tests/cli", None, 1,
     "kiln render: no ResourceGraphDefinition (kiln.dev/v1alpha1) in the input\n"),
    ("no instance", ["render", "-f", "../../examples/chain/rgd.yaml"], "tests/cli", None, 1,
     "kiln render: no instance of kiln.dev/v1alpha1 EchoService in the input\n"),
    ("two RGDs", ["render", "-f", "../../examples/chain/rgd.yaml", "-f",
                  "../../examples/web-app/rgd.yaml"], "tests/cli", None, 1,
     "kiln render: ../../examples/web-app/rgd.yaml: document 1: a second "
     "ResourceGraphDefinition (the first is in ../../examples/chain/rgd.yaml); render takes "
     "exactly one\n"),
    ("instance of another kind", ["render", "-f", "../../examples/chain/rgd.yaml", "-f",
                                  "../../examples/web-app/instance.yaml"], "tests/cli", None, 1,
     "kiln render: ../../examples/web-app/instance.yaml: document 1: expected an instance of "
     "kiln.dev/v1alpha1 EchoService (the kind the RGD defines), got kiln.dev/v1alpha1 WebApp\n"),
    ("missing file", ["render", "-f", "does-not-exist.yaml"], "tests/cli", None, 1, None),
    ("RGD that does not compile", ["render", "-f", "fixtures/lint/cycle.yaml", "-f",
                                   "fixtures/render/cycle-instance.yaml"], "tests/cli", None, 1,
     None),
    ("instance missing a required field", ["render", "-f", "../../examples/chain/rgd.yaml", "-f",
                                           "fixtures/render/chain-no-name.yaml"], "tests/cli",
     None, 1, None),
    ("instance field of the wrong type", ["render", "-f", "../../examples/chain/rgd.yaml", "-f",
                                          "fixtures/render/chain-bad-port.yaml"], "tests/cli",
     None, 1, None),
    ("script that fails at render time", ["render", "-f", "fixtures/render/failing-script.yaml"],
     "tests/cli", None, 1, None),
    ("stdin twice", ["render", "-f", "-", "-f", "-"], "tests/cli", b"", 1,
     "kiln render: -: standard input can be read only once\n"),
]


def case_render_errors():
    """Any error: nothing on stdout, the reason on stderr, exit status 1."""
    for name, args, cwd, stdin, want_status, want_err in RENDER_ERRORS:
        status, out, err = run(args, cwd=os.path.join(SRC, cwd), stdin=stdin)
        expect_status("render error '%s'" % name, want_status, status)
        if out != "":
            fail("render error '%s' printed on stdout: %r" % (name, out[:200]))
        if want_err is None:
            if not err.startswith("kiln render: ") or not err.endswith("\n"):
                fail("render error '%s': stderr %r does not start with 'kiln render: '" %
                     (name, err))
        else:
            same("render error '%s' stderr" % name, want_err, err)
    # The messages that depend on the engine are compared whole, in one file,
    # so a change of wording is seen in review.
    got = []
    for name, args, cwd, stdin, _, want_err in RENDER_ERRORS:
        if want_err is None and name != "missing file":
            _, _, err = run(args, cwd=os.path.join(SRC, cwd), stdin=stdin)
            got.append("# %s\n%s" % (name, err))
    same_file("render error messages", os.path.join(EXPECTED_DIR, "render-errors.stderr"),
              "".join(got))


def case_render_usage():
    """Usage errors exit 2 with the message and the usage line on stderr."""
    cases = [
        (["render"], "kiln render: no input: name the RGD and instances with -f\n"),
        (["render", "--bogus"], "kiln render: unknown flag \"--bogus\"\n"),
        (["render", "rgd.yaml"],
         "kiln render: unexpected argument \"rgd.yaml\" (name input files with -f)\n"),
        (["render", "-f"], "kiln render: flag -f needs a value\n"),
        (["render", "-f", "x.yaml", "-o", "toml"],
         "kiln render: unknown output format \"toml\" (want yaml or json)\n"),
    ]
    usage = ("usage: kiln render -f FILE [-f FILE]... [--observed DIR] [--status] [-o yaml|json]\n"
             "Run 'kiln help render' for more.\n")
    for args, first in cases:
        status, out, err = run(args)
        expect_status(" ".join(args), 2, status)
        same(" ".join(args) + " stdout", "", out)
        same(" ".join(args) + " stderr", first + usage, err)


# --- lint ------------------------------------------------------------------------

def lint_fixtures():
    return sorted(f for f in os.listdir(LINT_DIR) if f.endswith(".yaml"))


def case_lint_fixtures():
    """Each bad RGD: every error with its path on stdout, exit status 1."""
    for f in lint_fixtures():
        rel = os.path.join("fixtures", "lint", f)
        status, out, err = run(["lint", rel], cwd=CLI_DIR)
        expect_status("lint " + f, 1, status)
        same("lint %s stderr" % f, "", err)
        if not out.startswith(rel + ":"):
            fail("lint %s: output does not start with the file name: %r" % (f, out[:120]))
        same_file("lint " + f, os.path.join(LINT_DIR, f[:-5] + ".out"), out)


def case_lint_examples():
    """Every example lints clean: one ok line each, exit status 0."""
    files = [os.path.join("examples", e, "rgd.yaml") for e in EXAMPLES]
    status, out, err = run(["lint"] + files, cwd=SRC)
    expect_status("lint examples", 0, status)
    want = "".join("%s: %s: ok\n" % (f, e) for f, e in zip(files, EXAMPLES))
    same("lint examples", want, out)
    same("lint examples stderr", "", err)


def case_lint_mixed():
    """A bad file among good ones: all files reported, exit status 1."""
    good = os.path.join("..", "..", "examples", "chain", "rgd.yaml")
    bad = os.path.join("fixtures", "lint", "cycle.yaml")
    status, out, _ = run(["lint", good, bad, good], cwd=CLI_DIR)
    expect_status("lint mixed", 1, status)
    ok = "%s: chain: ok\n" % good
    want = ok + read(os.path.join(LINT_DIR, "cycle.out")) + ok
    same("lint mixed", want, out)
    status, out, err = run(["lint"])
    expect_status("lint without files", 2, status)
    same("lint without files", "kiln lint: no input: name one or more RGD files\n"
         "usage: kiln lint FILE...\nRun 'kiln help lint' for more.\n", err)


def case_bench_fixtures():
    """The benchmark fixtures stay valid: they lint clean and render the
    number of objects the benchmarks report."""
    names = ["foreach-1000.yaml", "rgd-100.yaml", "stack-15.yaml"]
    files = [os.path.join("bench", "fixtures", n) for n in names]
    status, out, err = run(["lint"] + files, cwd=SRC)
    expect_status("lint bench fixtures", 0, status)
    same("lint bench fixtures", "".join("%s: %s: ok\n" % (f, r) for f, r in
                                        zip(files, ["bench-foreach", "bench-100", "bench-stack"])),
         out)
    for f, want in zip(files, [1000, 100, 15]):
        status, out, err = run(["render", "-f", f, "-o", "json"], cwd=SRC)
        expect_status("render " + f, 0, status)
        got = json.loads(out)["items"] if status == 0 else []
        if len(got) != want:
            fail("render %s: %d objects, want %d" % (f, len(got), want))


# --- graph, crd ------------------------------------------------------------------

def case_graph():
    """Exact text, DOT and Mermaid pictures of the chain example."""
    rel = os.path.join("examples", "chain", "rgd.yaml")
    for fmt, args in (("text", []), ("text", ["--format", "text"]), ("dot", ["--format", "dot"]),
                      ("mermaid", ["--format=mermaid"])):
        status, out, err = run(["graph", rel] + args, cwd=SRC)
        expect_status("graph " + fmt, 0, status)
        same("graph %s stderr" % fmt, "", err)
        same_file("graph " + fmt, os.path.join(EXPECTED_DIR, "chain.graph." + fmt), out)
    status, out, err = run(["graph", rel, "--format", "svg"], cwd=SRC)
    expect_status("graph --format svg", 2, status)
    same("graph --format svg stdout", "", out)
    if not err.startswith("kiln graph: unknown format \"svg\" (want text, dot or mermaid)\n"):
        fail("graph --format svg: stderr %r" % err)
    status, out, err = run(["graph", os.path.join("tests", "cli", "fixtures", "lint", "cycle.yaml")],
                           cwd=SRC)
    expect_status("graph of a cyclic RGD", 1, status)
    same("graph of a cyclic RGD stdout", "", out)


def case_crd():
    """The generated CRD of the web-app example, exactly."""
    rel = os.path.join("examples", "web-app", "rgd.yaml")
    status, out, err = run(["crd", rel], cwd=SRC)
    expect_status("crd", 0, status)
    same("crd stderr", "", err)
    same_file("crd web-app", os.path.join(EXPECTED_DIR, "web-app.crd.yaml"), out)
    status, out, err = run(["crd", rel, "--builtin"], cwd=SRC)
    expect_status("crd FILE --builtin", 2, status)
    same("crd FILE --builtin stdout", "", out)


def case_builtin_crds():
    """crds/ holds exactly what `kiln crd --builtin` prints."""
    rel = os.path.join("crds", "resourcegraphdefinitions.kiln.dev.yaml")
    status, out, err = run(["crd", "--builtin"])
    expect_status("crd --builtin", 0, status)
    same("crd --builtin stderr", "", err)
    if UPDATE:
        same_file("crd --builtin", os.path.join(SRC, rel), out)
        return
    checked_in = read(os.path.join(SRC, rel))
    if checked_in != out:
        fail("%s is out of date with `kiln crd --builtin`; regenerate it with:\n"
             "  %s crd --builtin > %s" % (rel, KILN, rel))
    if "name: resourcegraphdefinitions.kiln.dev\n" not in out:
        fail("crd --builtin does not define resourcegraphdefinitions.kiln.dev")


# --- version, help, dispatch --------------------------------------------------------

def case_version():
    status, out, err = run(["version"])
    expect_status("version", 0, status)
    same("version", "kiln %s\n" % VERSION, out)
    same("version stderr", "", err)
    status, out2, _ = run(["--version"])
    same("--version", out, out2)
    status, _, err = run(["version", "extra"])
    expect_status("version extra", 2, status)


COMMANDS = ["render", "graph", "lint", "crd", "dev", "controller", "recipe", "version", "help"]


def case_help():
    status, out, err = run(["help"])
    expect_status("help", 0, status)
    same("help stderr", "", err)
    if not out.startswith("kiln turns a small custom resource"):
        fail("help does not start with the summary: %r" % out[:80])
    for c in COMMANDS:
        if "\n  %s  " % c.ljust(8) not in out:
            fail("help does not list %s" % c)
    for flag in (["--help"], ["-h"]):
        _, out2, _ = run(flag)
        same("kiln " + flag[0], out, out2)
    for c in COMMANDS:
        status, out, err = run(["help", c])
        expect_status("help " + c, 0, status)
        if not out.startswith("kiln %s: " % c) or "\nusage: kiln %s" % c not in out:
            fail("help %s has no title or usage line: %r" % (c, out[:200]))
        if c in ("render", "graph", "lint", "crd") and "\nExamples:\n  kiln %s " % c not in out:
            fail("help %s has no examples" % c)
        if c != "dev":  # `kiln dev --help` belongs to the dev cluster's own parser
            status2, out2, _ = run([c, "--help"])
            expect_status(c + " --help", 0, status2)
            same(c + " --help vs help " + c, out, out2)
    status, out, err = run(["help", "nope"])
    expect_status("help nope", 2, status)
    same("help nope", "kiln help: unknown command \"nope\"\nusage: kiln help [COMMAND]\n"
         "Run 'kiln help help' for more.\n", err)


def case_dispatch():
    usage = "usage: kiln [--log-level LEVEL] COMMAND [ARGS]\nRun 'kiln help' for the list of commands.\n"
    status, out, err = run(["frobnicate"])
    expect_status("unknown command", 2, status)
    same("unknown command stdout", "", out)
    same("unknown command", "kiln: unknown command \"frobnicate\"\n" + usage, err)
    status, out, err = run(["--frob"])
    expect_status("unknown global flag", 2, status)
    same("unknown global flag", "kiln: unknown flag \"--frob\"\n" + usage, err)
    status, out, err = run([])
    expect_status("no command", 2, status)
    same("no command stdout", "", out)
    if "usage: kiln [--log-level LEVEL] COMMAND [ARGS]" not in err:
        fail("no command: no usage on stderr: %r" % err)
    status, out, err = run(["--log-level", "loud", "version"])
    expect_status("bad log level", 2, status)
    same("bad log level", "kiln: unknown log level \"loud\" (want debug, info, warn, error or off)\n"
         + usage, err)
    for args in (["--log-level", "debug", "version"], ["version", "--log-level=error"]):
        status, out, err = run(args)
        expect_status(" ".join(args), 0, status)
        same(" ".join(args), "kiln %s\n" % VERSION, out)


def main():
    name = sys.argv[4].replace("-", "_")
    fn = globals().get("case_" + name)
    if fn is None:
        print("clitest.py: unknown case %s" % sys.argv[4])
        return 2
    fn(*sys.argv[5:])
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
