# tests/controller/ctl.sh: a `kiln controller` process for the integration
# scripts. Source after tests/devcluster/lib.sh; needs KILN and KUBECONFIG.
CTL_PID=""

# start_kiln_controller [flags...]: runs the controller in the background
# (logs to $WORK/ctl.err), installing kiln's CRDs first.
start_kiln_controller() {
    "$KILN" controller --kubeconfig "$KUBECONFIG" --workers 2 --log-format json --log-level info \
        --install-crds --metrics-bind-address 0 --health-probe-bind-address 0 "$@" \
        2>>"$WORK/ctl.err" &
    CTL_PID=$!
}

# stop_kiln_controller: SIGTERM, and a check that it drained and exited 0
# (under ASan a leak makes that non-zero).
stop_kiln_controller() {
    [ -n "$CTL_PID" ] || return 0
    kill -TERM "$CTL_PID" 2>/dev/null
    local rc=0
    wait "$CTL_PID" || rc=$?
    CTL_PID=""
    expect_eq "controller exit status after SIGTERM" "$rc" "0"
    [ "$rc" = 0 ] || tail -30 "$WORK/ctl.err" >&2
}

cleanup() {
    if [ -n "$CTL_PID" ]; then
        kill -TERM "$CTL_PID" 2>/dev/null
        wait "$CTL_PID" 2>/dev/null
    fi
    stop_server
    if [ "$FAILS" -ne 0 ] && [ -f "$WORK/ctl.err" ]; then
        echo "--- controller log (last 40 lines)" >&2
        tail -40 "$WORK/ctl.err" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
