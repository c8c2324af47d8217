#!/usr/bin/env bash
# Redis Cluster under faults, the figures: sessions per master; resumption while 1000 slots are
# resharded under load (redis-cli --cluster reshard; the MOVED / ASK redirects followed); the
# time until both nodes are ready again after a master is SIGKILLed and its replica promoted
# (3 masters + 3 replicas on loopback, cluster-node-timeout 1000 ms), with the handshakes that
# failed meanwhile.
#
#   bench/cluster_faults.sh [--build DIR] [--secs N]
#
# It runs the scenario tests/integration/redis_cluster.sh checks in CI, against an optimized
# build and with loads of N seconds (default 10), and prints its FIGURE lines, then the
# checks' summary. A measurement, not a test: every process is ended by PID (the test's trap).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SECS=10
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--secs N]" >&2; exit 1 ;;
    esac
done
LOG=$(mktemp "${TMPDIR:-/tmp}/tlsc-cluster-faults.XXXXXX")
TLSC_BIN=$BUILD TLSC_ROOT=$ROOT RC_LOAD_SECS=$SECS bash "$ROOT/tests/integration/redis_cluster.sh" >"$LOG" 2>&1
rc=$?
grep -E '^(FIGURE|reshard[0-9]+:|tlscache_)' "$LOG" | sed 's/^FIGURE //'
tail -1 "$LOG"
[ "$rc" = 0 ] || { echo "(the scenario's checks failed: full log in $LOG)"; exit 1; }
rm -f "$LOG"
