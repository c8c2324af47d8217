#!/usr/bin/env bash
# Figures, not a test: --store-replicas 0 and 1 on a Redis Cluster (3 masters + 3 replicas on
# loopback, cluster-node-timeout 1000 ms, tests/lib/redis_cluster.sh), one tlscache-server node
# (2 workers, the default --lookup-timeout / --store-timeout) with --redis redis-cluster://…,
# everything fresh per round:
#   1. cost: tlscache-bench --mode full (every handshake makes and stores a new session) for
#      SECONDS at concurrency 16: new sessions/s, full-handshake latency p50/p99, node and Redis
#      (all six) CPU per 1000 new sessions; then SECONDS at concurrency 1, where the latency
#      added by WAIT is not hidden in queueing;
#   2. failover: SESSIONS sessions made one by one with openssl s_client (each saved), a master
#      SIGKILLed right after the last; once its replica is promoted, how many of them resume
#      (each offered up to 3 times: a lookup can miss the 10 ms --lookup-timeout on a loaded
#      machine, which says nothing about whether the session survived); and, from the node's
#      /metrics, stores that timed out and WAITs that came back short.
# Prints Markdown tables. Every process is ended by PID (tests/lib/common.sh's trap).
#   bench/cluster_replicas.sh [BUILD_DIR] [SECONDS] [SESSIONS]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
SECS=${2:-5}
NSESS=${3:-60}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export TLSC_ROOT=$ROOT TLSC_BIN=$BUILD
. "$ROOT/tests/lib/common.sh"
. "$ROOT/tests/lib/redis_cluster.sh"
SERVER=$BUILD/server/tlscache-server
BENCH=$BUILD/bench/tlscache-bench
for b in "$SERVER" "$BENCH"; do [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 1; }; done
need redis-server redis-cli openssl jq curl timeout python3
trap cleanup EXIT
tlsc_tmpdir
(
    cd "$TLSC_TMP" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost -keyout srv.key \
            -out srv.pem
) >/dev/null 2>&1 || { echo "openssl failed" >&2; exit 1; }

. "$ROOT/bench/new_session_cost.sh"
# sclient IN OUT: one TLS 1.2 handshake; prints "Reused" or "New".
sclient() {
    local args=(-connect "127.0.0.1:$NP" -tls1_2 -noservername)
    [ -n "$1" ] && args+=(-sess_in "$1")
    [ -n "$2" ] && args+=(-sess_out "$2")
    echo | timeout 5 openssl s_client "${args[@]}" 2>/dev/null | grep -aoE '^(Reused|New),' | tr -d ,
}
# promoted PORT VICTIM: the node at PORT sees three masters again, none of them VICTIM.
promoted() { [ "$(rc_masters "$1" | grep -vx "$2" | wc -l)" = 3 ]; }
# links_to PORT N: the node's log says N links (not wait links) to the Redis at PORT connected.
links_to() { [ "$(grep -c "127.0.0.1:$1/0: connected" "$R/node.log")" -ge "$2" ]; }

# round N: a fresh cluster and node with --store-replicas N; sets COST[N] and FAIL[N].
round() {
    local n=$1 p redis=() ok victim pid_var m timeouts short before new
    R=$TLSC_TMP/round$n
    mkdir -p "$R"
    start_redis_cluster >/dev/null || exit 1
    wait_for 60 "replicas in sync" rc_replicas_online >/dev/null || exit 1
    for p in "${RC_PORTS[@]}"; do
        pid_var=RC_PID_$p
        redis+=("${!pid_var}")
    done
    NP=$(free_port) AP=$(free_port)
    "$SERVER" --listen "127.0.0.1:$NP" --workers 2 --cert "$TLSC_TMP/srv.pem" --key "$TLSC_TMP/srv.key" \
        --admin "127.0.0.1:$AP" --local-cache 0 --store-replicas "$n" --log-level info \
        --redis "redis-cluster://127.0.0.1:${RC_PORTS[0]},127.0.0.1:${RC_PORTS[1]},127.0.0.1:${RC_PORTS[2]}" >>"$R/node.log" 2>&1 &
    NPID=$!
    track "$NPID"
    wait_port "$NP" 15 || { tail "$R/node.log" >&2; exit 1; }
    wait_for 30 "node ready" curl -sf -o /dev/null "http://127.0.0.1:$AP/readyz" >/dev/null || exit 1
    timeout 30 "$BENCH" --target "127.0.0.1:$NP" --connections 200 --concurrency 4 --quiet >/dev/null 2>&1 # warm up

    # 1. cost of a new session
    COST[$n]=$(cost_row "$n" "$R/cost.json" "$NPID" "${redis[@]}")
    # the added latency alone: one handshake at a time, so that no queue adds to it
    timeout $((SECS + 30)) "$BENCH" --target "127.0.0.1:$NP" --tls 1.2 --mode full --duration "$SECS" --concurrency 1 \
        --quiet --json "$R/lat.json" >/dev/null 2>&1
    LAT[$n]=$(jq -r --arg n "$n" '"| \($n) | \(.handshakes.total) | \(.latency_ms.full.p50) | \(.latency_ms.full.p90) | \(.latency_ms.full.p99) |"' "$R/lat.json")

    # 2. sessions made right before a master's SIGKILL, resumed after the promotion
    before=$(rc_masters)
    victim=$(head -1 <<<"$before")
    pid_var=RC_PID_$victim
    for i in $(seq "$NSESS"); do sclient "" "$R/pre-$i" >/dev/null; done
    kill -KILL "${!pid_var}"
    p=$(printf '%s\n' "${RC_PORTS[@]}" | grep -vx "$victim" | head -1)
    wait_for 60 "a replica promoted" promoted "$p" "$victim" >/dev/null || exit 1
    # /readyz may still be the one from before the kill (a second old): wait until both workers
    # linked to the promoted master, which they do when their slot map names it.
    new=$(rc_masters "$p" | grep -vxF -e "$before")
    wait_for 30 "both workers linked to the promoted master" links_to "$new" 2 >/dev/null || exit 1
    wait_for 30 "node ready" curl -sf -o /dev/null "http://127.0.0.1:$AP/readyz" >/dev/null || exit 1
    ok=0
    for i in $(seq "$NSESS"); do
        for _ in 1 2 3; do [ "$(sclient "$R/pre-$i" "")" = Reused ] && { ok=$((ok + 1)); break; }; done
    done
    m=$(curl -s "http://127.0.0.1:$AP/metrics")
    timeouts=$(awk '/^tlscache_stores_total\{worker="all",outcome="timeout"\}/ {print $2}' <<<"$m")
    short=$(awk '/^tlscache_store_waits_total\{worker="all",outcome="short"\}/ {print $2}' <<<"$m")
    FAIL[$n]="| $n | $ok of $NSESS | ${timeouts:-0} | ${short:--} |"
    for p in "$NPID" "${redis[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "$NPID" "${redis[@]}"; do wait "$p" 2>/dev/null; done
}

declare -A COST LAT FAIL
for n in 0 1; do round "$n"; done
echo "$COST_HEADER"
for n in 0 1; do echo "${COST[$n]}"; done
echo
echo "| --store-replicas | new sessions, one at a time | full p50 ms | full p90 ms | full p99 ms |"
echo "|---|---|---|---|---|"
for n in 0 1; do echo "${LAT[$n]}"; done
echo
echo "| --store-replicas | sessions made right before the SIGKILL that resume after the promotion | stores timed out | WAITs short |"
echo "|---|---|---|---|"
for n in 0 1; do echo "${FAIL[$n]}"; done
