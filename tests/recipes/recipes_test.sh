#!/bin/sh
# recipes_test.sh CASE KILN SOURCE_DIR
#   lint     every shipped inference RGD passes `kiln lint`
#   cli      `kiln recipe list|resolve` output, errors included, matches the
#            golden files in tests/recipes/expected/
#   render   every inference example renders to its expected.yaml byte for byte
#   errors   bad instances (tests/recipes/fixtures/) fail or wait with a message
#            naming the field or criterion, as in expected/errors.txt
#   runtime  the ClusterRuntime RGD lints and each runtime example renders to
#            its golden file; skipped (77) when this kiln has no `recipe` Lua
#            module yet
# KILN_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing.
set -u
LC_ALL=C
export LC_ALL
case_name=$1
kiln=$2
src=$3
recipes=$src/recipes
expected=$src/tests/recipes/expected
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# compare NAME GOLDEN ACTUAL
compare() {
    if [ "${KILN_UPDATE_GOLDEN:-}" = 1 ]; then
        cp "$3" "$2"
        echo "updated $2"
    elif ! diff -u "$2" "$3"; then
        echo "FAIL: $1 differs from $2"
        fail=1
    fi
}

# run_cli NAME ARGS...: stdout, stderr and exit status in one golden file.
run_cli() {
    name=$1
    shift
    "$kiln" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    {
        echo "\$ kiln $*"
        cat "$tmp/out"
        if [ -s "$tmp/err" ]; then
            echo "--- stderr"
            cat "$tmp/err"
        fi
        echo "--- exit $rc"
    } >"$tmp/$name"
    compare "$name" "$expected/$name.txt" "$tmp/$name"
}

# render_example DIR: DIR/rgd.yaml + DIR/instance.yaml (+ DIR/observed/).
render_example() {
    dir=$1
    set -- -f "$dir/rgd.yaml" -f "$dir/instance.yaml"
    [ -d "$dir/observed" ] && set -- "$@" --observed "$dir/observed"
    if ! "$kiln" render "$@" >"$tmp/render" 2>"$tmp/err"; then
        echo "FAIL: kiln render $*"
        cat "$tmp/err"
        fail=1
        return
    fi
    compare "$dir" "$dir/expected.yaml" "$tmp/render"
}

case $case_name in
lint)
    for rgd in "$recipes"/inference/*/rgd.yaml; do
        "$kiln" lint "$rgd" || fail=1
    done
    # Every recipe `kiln recipe list` names exists.
    "$kiln" recipe list | sed -n '/^Recipes:/,$p' | awk 'NR > 1 {print $2}' >"$tmp/paths"
    [ -s "$tmp/paths" ] || { echo "FAIL: kiln recipe list names no recipes"; fail=1; }
    while read -r path; do
        [ -e "$src/$path" ] || { echo "FAIL: kiln recipe list names $path, which does not exist"; fail=1; }
    done <"$tmp/paths"
    ;;
cli)
    run_cli list recipe list
    run_cli list-json recipe list -o json
    run_cli resolve-eks-h100-ubuntu-inference recipe resolve --service eks --accelerator h100 \
        --os ubuntu --intent inference
    run_cli resolve-eks-h100-ubuntu-inference-yaml recipe resolve --service eks \
        --accelerator h100 --os ubuntu --intent inference -o yaml
    run_cli resolve-gke-h100-cos-training-json recipe resolve --service gke --accelerator h100 \
        --os cos --intent training -o json
    run_cli resolve-aks-gb200-ubuntu-inference-dynamo recipe resolve --service aks \
        --accelerator gb200 --os ubuntu --intent inference --platform dynamo
    run_cli resolve-error-unmatched recipe resolve --service gke --accelerator h100 --os ubuntu \
        --intent inference
    run_cli resolve-error-unknown recipe resolve --service eks --accelerator h800 --os ubuntu \
        --intent inference
    run_cli resolve-error-missing recipe resolve --service eks --accelerator h100 \
        --intent inference
    run_cli resolve-error-usage recipe resolve --service eks --gpu h100
    ;;
render)
    for dir in "$recipes"/inference/*/; do
        render_example "${dir%/}"
    done
    ;;
errors)
    # Relative paths, so the messages are the same on every machine.
    cd "$src" || exit 1
    : >"$tmp/errors"
    for f in tests/recipes/fixtures/inference-stack-*.yaml; do
        echo "\$ kiln render -f recipes/inference/inference-stack/rgd.yaml -f $f" >>"$tmp/errors"
        "$kiln" render -f recipes/inference/inference-stack/rgd.yaml -f "$f" >/dev/null 2>>"$tmp/errors"
        echo "--- exit $?" >>"$tmp/errors"
    done
    f=tests/recipes/fixtures/cluster-runtime-bad.yaml
    echo "\$ kiln render -f recipes/runtime/cluster-runtime.rgd.yaml -f $f" >>"$tmp/errors"
    "$kiln" render -f recipes/runtime/cluster-runtime.rgd.yaml -f "$f" >/dev/null 2>>"$tmp/errors"
    echo "--- exit $?" >>"$tmp/errors"
    compare errors "$expected/errors.txt" "$tmp/errors"
    ;;
runtime)
    rgd=$recipes/runtime/cluster-runtime.rgd.yaml
    if "$kiln" lint "$rgd" >"$tmp/lint" 2>&1; then
        cat "$tmp/lint"
    elif grep -q "global 'recipe'" "$tmp/lint"; then
        echo "skipped: this kiln has no recipe Lua module (lua/sandbox.c does not open it yet)"
        exit 77
    else
        cat "$tmp/lint"
        exit 1
    fi
    for inst in "$recipes"/runtime/examples/*.instance.yaml; do
        golden=${inst%.instance.yaml}.expected.yaml
        if ! "$kiln" render -f "$rgd" -f "$inst" >"$tmp/render" 2>"$tmp/err"; then
            echo "FAIL: kiln render -f $rgd -f $inst"
            cat "$tmp/err"
            fail=1
            continue
        fi
        compare "$inst" "$golden" "$tmp/render"
    done
    # Every criteria combination that resolves renders with both deliveries:
    # the RGD's wiring agrees with the lock data's dependencies everywhere.
    n=0
    for service in eks gke aks oke kind self-managed; do
        os=ubuntu
        [ "$service" = gke ] && os=cos
        for acc in h100 h200 a100 l40s gb200; do
            for plat in inference: inference:dynamo training: training:kubeflow; do
                for delivery in argocd flux; do
                    n=$((n + 1))
                    cat >>"$tmp/all.yaml" <<DOC
apiVersion: kiln.dev/v1alpha1
kind: ClusterRuntime
metadata: {name: r$n}
spec: {service: $service, accelerator: $acc, os: $os, intent: ${plat%%:*}, platform: "${plat#*:}", delivery: $delivery}
---
DOC
                done
            done
        done
    done
    if ! "$kiln" render -f "$rgd" -f "$tmp/all.yaml" >/dev/null 2>"$tmp/err"; then
        echo "FAIL: rendering all $n criteria combinations"
        cat "$tmp/err"
        fail=1
    elif grep -v "pending\|PENDING" "$tmp/err"; then
        echo "FAIL: unexpected messages rendering all $n criteria combinations"
        fail=1
    else
        echo "rendered $n criteria combinations"
    fi
    ;;
*)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
exit $fail
