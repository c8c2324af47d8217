# tlscache-ctl helpers for the ctl tests (ctl.sh, ctl_cluster.sh). Source after common.sh and
# server.sh, after tlsc_tmpdir. Every ctl output is kept in $O, for the checks and scans after.
CTL=$TLSC_BIN/ctl/tlscache-ctl
O=$TLSC_TMP/out
mkdir -p "$O"

# ctl NAME ARGS...: runs tlscache-ctl, output in $O/NAME (stdout and stderr), prints it; its exit status.
ctl() {
    local name=$1
    shift
    "$CTL" "$@" >"$O/$name" 2>&1
    local rc=$?
    cat "$O/$name"
    return $rc
}
# resumed PORT SNI SESS: a TLS 1.2 handshake offering SESS; prints true or false (resumed).
resumed() { jfield "$(sget "$1" 1.2 "$2" "$3" "$3.again")" resumed; }
