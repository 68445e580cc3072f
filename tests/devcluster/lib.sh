# tests/devcluster/lib.sh: helpers for the dev cluster's integration scripts.
# Usage: DEVCLUSTER=<path to kiln-devcluster or "kiln dev"> source lib.sh
set -u

KUBECTL_DIR=$(dirname "$(readlink -f "$(command -v kubectl || echo /usr/bin/kubectl)")")
if [ ! -x "$KUBECTL_DIR/kubectl.1.32" ] || ! command -v curl >/dev/null; then
    echo "SKIP: needs kubectl.1.27/1.32/1.33 beside kubectl, and curl"
    exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-dc-test.XXXXXX")
export KUBECACHEDIR="$WORK/cache"
SERVER_PID=""
FAILS=0

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
# A killed test (a CTest timeout) still stops its server, and ends the whole
# script even when the signal lands while a command substitution runs.
trap 'trap - EXIT; cleanup; kill -KILL $$' TERM INT

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

# expect_eq <what> <actual> <expected>
expect_eq() {
    if [ "$2" != "$3" ]; then
        fail "$1: expected [$3], got [$2]"
    else
        echo "ok: $1"
    fi
}

# expect_match <what> <actual> <grep -E pattern>
expect_match() {
    if ! printf '%s' "$2" | grep -Eq -- "$3"; then
        fail "$1: [$2] does not match /$3/"
    else
        echo "ok: $1"
    fi
}

# poll <seconds> <command...>: retries until the command succeeds.
poll() {
    local t=$1
    shift
    local end=$((SECONDS + t))
    while [ $SECONDS -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# poll_eq <seconds> <expected> <command...>: reruns the command until it
# prints the expected text.
poll_eq() {
    local t=$1 want=$2
    shift 2
    local end=$((SECONDS + t))
    while [ $SECONDS -lt "$end" ]; do
        [ "$("$@" 2>/dev/null)" = "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

# poll_sh <seconds> <shell code>: evaluates the code until it succeeds.
poll_sh() {
    local t=$1
    local end=$((SECONDS + t))
    while [ $SECONDS -lt "$end" ]; do
        eval "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# start_server [flags...]: starts the dev cluster on a free port, sets URL,
# KUBECONFIG and SERVER_PID, and waits until /readyz answers.
start_server() {
    : >"$WORK/server.out"
    # shellcheck disable=SC2086
    $DEVCLUSTER --port 0 --kubeconfig "$WORK/kubeconfig" --log-level warn "$@" \
        >"$WORK/server.out" 2>>"$WORK/server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        URL=$(sed -n 's/^kiln dev cluster listening on //p' "$WORK/server.out")
        if [ -n "$URL" ] && curl -sfk "$URL/readyz" >/dev/null 2>&1; then
            export KUBECONFIG="$WORK/kubeconfig"
            return 0
        fi
        sleep 0.05
    done
    echo "server did not start:" >&2
    cat "$WORK/server.err" >&2
    exit 1
}

# stop_server [signal]: stops the server (SIGTERM by default) and checks a
# clean exit for SIGTERM.
stop_server() {
    local sig=${1:-TERM}
    if [ -n "$SERVER_PID" ]; then
        kill "-$sig" "$SERVER_PID" 2>/dev/null
        local rc=0
        wait "$SERVER_PID" || rc=$?
        if [ "$sig" = TERM ] && [ "$rc" != 0 ]; then
            fail "server exited with status $rc after SIGTERM"
            tail -20 "$WORK/server.err" >&2
        fi
        SERVER_PID=""
    fi
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}
