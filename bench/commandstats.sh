#!/usr/bin/env bash
# What Redis does per handshake, by command shape: INFO commandstats around one tlscache-bench
# run per row (TLS 1.2 / 1.3, full / resumed by ID), with the node-local cache off and on.
# Prints, per row and command, calls per handshake and Redis microseconds per handshake.
#
#   bench/commandstats.sh [--build DIR] [--secs N] [--concurrency C] [--workers W]
#
# A measurement, not a test: it asserts nothing. Every process it starts is ended by PID.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SECS=5
CONC=8
WORKERS=2
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--secs N] [--concurrency C] [--workers W]" >&2; exit 1 ;;
    esac
done
BENCH=$BUILD/bench/tlscache-bench
SERVER=$BUILD/server/tlscache-server
for t in redis-server redis-cli jq awk; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-cmdstats.XXXXXX")
PIDS=()
stop_all() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    PIDS=()
}
trap 'stop_all; rm -rf "$TMP"' EXIT
. "$ROOT/tests/lib/certs.sh"
make_test_pki "$TMP/pki" >/dev/null || exit 1
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/secret"
chmod 600 "$TMP/secret"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
RPORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --logfile "$TMP/redis.log" &
PIDS+=($!)
wait_port "$RPORT" || exit 1

echo "| local cache | TLS | mode | handshakes | resumed % | hit split (L1 / Redis / miss) | command | calls / handshake | Redis µs / handshake |"
echo "|---|---|---|---|---|---|---|---|---|"
# redis_clients_ge PORT N: waits (<= 10 s) until the Redis on PORT has at least N clients (the
# workers' links), so the first handshakes do not race the workers' connect.
redis_clients_ge() {
    local i
    for i in $(seq 100); do
        [ "$(redis-cli -p "$1" client list 2>/dev/null | grep -c .)" -gt "$2" ] && return 0 # counting itself
        sleep 0.1
    done
    echo "redis on $1: fewer than $2 clients after 10 s" >&2
    return 1
}
for l1 in 0 64m; do
    port=$(free_port)
    "$SERVER" --listen "127.0.0.1:$port" --workers "$WORKERS" --node n1 --cert "$TMP/pki/default.pem" \
        --key "$TMP/pki/default.key" --redis "redis://127.0.0.1:$RPORT" --seal-secret-file "$TMP/secret" \
        --local-cache "$l1" --log-level warn >>"$TMP/server.log" 2>&1 &
    spid=$!
    PIDS+=($spid)
    wait_port "$port" || exit 1
    redis_clients_ge "$RPORT" "$WORKERS" || exit 1
    for tls in 1.2 1.3; do
        for mode in full id; do
            redis-cli -p "$RPORT" config resetstat >/dev/null
            "$BENCH" --target "127.0.0.1:$port" --tls "$tls" --mode "$mode" --duration "$SECS" --concurrency "$CONC" \
                --sni localhost --quiet --json "$TMP/run.json" --redis "redis://127.0.0.1:$RPORT" --redis-settle 1500 \
                >"$TMP/bench.out" 2>>"$TMP/bench.err"
            # Taken at once: the stats writers' own HSETs (one per worker a second) are in it, and said so below.
            redis-cli -p "$RPORT" info commandstats | tr -d '\r' | grep '^cmdstat_' >"$TMP/cs"
            hs=$(jq '.handshakes.total' "$TMP/run.json")
            rate=$(jq -r 'if .resumption.rate == null then "-" else (.resumption.rate * 1000 | round / 10 | tostring) end' "$TMP/run.json")
            hits=$(jq -r '.server.total | [.lookups_l1_hit, .lookups_hit, .lookups_miss] | map(tostring) | join(" / ")' \
                "$TMP/run.json" 2>/dev/null)
            awk -F'[:=,]' -v hs="$hs" -v l1="$l1" -v tls="$tls" -v mode="$mode" -v rate="$rate" -v hits="${hits:--}" '
                { cmd = $1; sub(/^cmdstat_/, "", cmd); calls = $3; usec = $5
                  if (hs > 0) printf "| %s | %s | %s | %d | %s | %s | %s | %.3f | %.2f |\n", l1, tls, mode, hs, rate, hits, cmd, calls / hs, usec / hs }' "$TMP/cs"
        done
    done
    kill -TERM "$spid"
    for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
done
echo
echo "Each row: one tlscache-bench run of $SECS s, concurrency $CONC, one node with $WORKERS workers; commands counted"
echo "by Redis between CONFIG RESETSTAT and the end of the run, the workers' once-a-second stats writes included (hset,"
echo "multi/exec/expire at 1/s per worker, and the bench's own reads: scan, hgetall)."
