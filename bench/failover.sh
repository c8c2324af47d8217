#!/usr/bin/env bash
# Figures, not a test: a Sentinel failover under a steady load, with --store-replicas 0 and 1.
# Per round: a fresh master, a replica and three sentinels (down-after 1000 ms, failover-timeout
# 3000 ms) on loopback ports, one tlscache-server node (2 workers) with the sentinel URL.
#   1. cost: tlscache-bench --mode full (every handshake makes and stores a new session) for
#      SECONDS: handshakes/s, full-handshake latency p50/p99, node and Redis (master + replica)
#      CPU per 1000 new sessions;
#   2. failover: SESSIONS sessions are made one by one with openssl s_client (each saved), the
#      master is SIGKILLed right after the last one, while tlscache-bench keeps a steady load
#      (TLS 1.2 IDs, one new session in 4); then: failed handshakes of the bench run, the time
#      from the kill until a new session resumes again, and how many of the pre-kill sessions
#      still resume (each offered up to 3 times: on a loaded machine a lookup can miss the
#      10 ms --lookup-timeout, which says nothing about whether the session survived); and,
#      from the node's /metrics over the round, stores that timed out and WAITs that came back
#      short.
# Prints Markdown tables.
#   bench/failover.sh [BUILD_DIR] [SECONDS] [SESSIONS]
set -u
BUILD=${1:-build}
SECS=${2:-5}
NSESS=${3:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/$BUILD
[ -x "$BIN/server/tlscache-server" ] || BIN=$BUILD
SERVER=$BIN/server/tlscache-server
BENCH=$BIN/bench/tlscache-bench
for b in "$SERVER" "$BENCH"; do [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 1; }; done
for c in redis-server redis-sentinel redis-cli openssl jq; do command -v $c >/dev/null || { echo "missing $c" >&2; exit 1; }; done
TMP=$(mktemp -d)
PIDS=()
stop_all() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]:-}"; do wait "$p" 2>/dev/null; done; PIDS=(); }
trap 'stop_all; rm -rf "$TMP"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
. "$ROOT/bench/new_session_cost.sh"
now_ms() { date +%s%3N; }

(
    cd "$TMP" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost -keyout srv.key \
            -out srv.pem && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >seal.secret && chmod 600 seal.secret
) >/dev/null 2>&1 || { echo "openssl failed" >&2; exit 1; }

# sclient IN OUT: one TLS 1.2 handshake; prints "Reused" or "New"; fails when it did not complete.
sclient() {
    local args=(-connect "127.0.0.1:$NP" -tls1_2 -noservername)
    [ -n "$1" ] && args+=(-sess_in "$1")
    [ -n "$2" ] && args+=(-sess_out "$2")
    echo | timeout 5 openssl s_client "${args[@]}" 2>/dev/null | grep -aoE '^(Reused|New),' | tr -d ,
}

# round N: everything fresh, --store-replicas N. Sets the globals the tables print.
round() {
    local n=$1 M R S=() p i url kill_ms back_ms ok
    rm -rf "$TMP/r" && mkdir -p "$TMP/r"
    M=$(port) R=$(port)
    redis-server --bind 127.0.0.1 --port "$M" --save '' --appendonly no --dir "$TMP/r" --logfile "$TMP/r/m.log" &
    MPID=$!
    PIDS+=($MPID)
    redis-server --bind 127.0.0.1 --port "$R" --save '' --appendonly no --dir "$TMP/r" --logfile "$TMP/r/r.log" \
        --replicaof 127.0.0.1 "$M" &
    RPID=$!
    PIDS+=($RPID)
    wait_port "$M" && wait_port "$R" || { echo "redis did not start" >&2; exit 1; }
    for i in 1 2 3; do
        p=$(port)
        printf 'bind 127.0.0.1\nport %s\ndir %s\nlogfile %s\nsentinel monitor mymaster 127.0.0.1 %s 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\n' \
            "$p" "$TMP/r" "$TMP/r/s$i.log" "$M" >"$TMP/r/s$i.conf"
        redis-sentinel "$TMP/r/s$i.conf" &
        PIDS+=($!)
        wait_port "$p" || { echo "sentinel did not start" >&2; exit 1; }
        S+=("127.0.0.1:$p")
    done
    for _ in $(seq 300); do # the sentinels know the replica and each other
        ok=0
        for p in "${S[@]}"; do
            redis-cli -p "${p#*:}" SENTINEL master mymaster | tr '\n' ' ' | grep -q 'num-slaves 1 .*num-other-sentinels 2' && ok=$((ok + 1))
        done
        [ "$ok" = 3 ] && break
        sleep 0.1
    done
    url="redis-sentinel://$(
        IFS=,
        echo "${S[*]}"
    )/mymaster"
    NP=$(port) AP=$(port)
    "$SERVER" --listen "127.0.0.1:$NP" --workers 2 --cert "$TMP/srv.pem" --key "$TMP/srv.key" --admin "127.0.0.1:$AP" \
        --seal-secret-file "$TMP/seal.secret" --redis "$url" --store-replicas "$n" --log-level warn >>"$TMP/node.log" 2>&1 &
    NPID=$!
    PIDS+=($NPID)
    wait_port "$NP" || { echo "node did not start" >&2; tail "$TMP/node.log" >&2; exit 1; }
    timeout 30 "$BENCH" --target "127.0.0.1:$NP" --connections 200 --concurrency 4 --quiet >/dev/null 2>&1 # warm up

    # 1. cost of a new session
    COST[$n]=$(cost_row "$n" "$TMP/cost.json" "$NPID" "$MPID" "$RPID")

    # 2. failover under load
    timeout 60 "$BENCH" --target "127.0.0.1:$NP" --tls 1.2 --mode id --new-session-every 4 --duration 20 --concurrency 8 \
        --quiet --json "$TMP/load.json" >/dev/null 2>&1 &
    local bpid=$!
    for i in $(seq "$NSESS"); do sclient "" "$TMP/pre-$i" >/dev/null; done
    kill -KILL "$MPID"
    kill_ms=$(now_ms)
    back_ms=-
    for i in $(seq 600); do # at most about 60 s
        if sclient "" "$TMP/post" >/dev/null && [ "$(sclient "$TMP/post" "")" = Reused ]; then
            back_ms=$(($(now_ms) - kill_ms))
            break
        fi
        sleep 0.05
    done
    ok=0
    for i in $(seq "$NSESS"); do
        for _ in 1 2 3; do [ "$(sclient "$TMP/pre-$i" "")" = Reused ] && { ok=$((ok + 1)); break; }; done
    done
    wait "$bpid"
    local m timeouts short
    m=$(curl -s "http://127.0.0.1:$AP/metrics")
    timeouts=$(awk '/^tlscache_stores_total\{worker="all",outcome="timeout"\}/ {print $2}' <<<"$m")
    short=$(awk '/^tlscache_store_waits_total\{worker="all",outcome="short"\}/ {print $2}' <<<"$m")
    FAIL[$n]="| $n | $(jq -r '"\(.connections) | \(.connections_failed)"' "$TMP/load.json") | $back_ms | $ok of $NSESS | ${timeouts:-0} | ${short:--} |"
    stop_all
}

declare -A COST FAIL
for n in 0 1; do round "$n"; done
echo "$COST_HEADER"
for n in 0 1; do echo "${COST[$n]}"; done
echo
echo "| --store-replicas | handshakes in the run | failed | ms from SIGKILL to resuming again | pre-kill sessions resumed | stores timed out | WAITs short |"
echo "|---|---|---|---|---|---|---|"
for n in 0 1; do echo "${FAIL[$n]}"; done
