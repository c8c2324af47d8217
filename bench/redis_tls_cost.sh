#!/usr/bin/env bash
# Figures, not a test: what TLS to Redis (rediss://) costs a node. One redis-server listens on a
# plain port and a TLS port (the same data); one tlscache-server node (2 workers) runs against
# each in turn, and tlscache-bench resumes sessions through it (TLS 1.2 session IDs, TLS 1.3
# stateful tickets). Prints a Markdown table: handshakes/s, resumed share, latency
# percentiles, and CPU seconds per 1000 handshakes of the node and of Redis.
#   bench/redis_tls_cost.sh [BUILD_DIR] [SECONDS]
set -u
BUILD=${1:-build}
SECS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BIN=$ROOT/$BUILD
[ -x "$BIN/server/tlscache-server" ] || BIN=$BUILD
SERVER=$BIN/server/tlscache-server
BENCH=$BIN/bench/tlscache-bench
for b in "$SERVER" "$BENCH"; do [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 1; }; done
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT


(
    cd "$TMP" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=ca -keyout ca.key -out ca.pem &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout r.key -out r.csr &&
        openssl x509 -req -in r.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
            -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') -out r.pem &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost -keyout srv.key \
            -out srv.pem && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >seal.secret && chmod 600 seal.secret
) >/dev/null 2>&1 || { echo "openssl failed" >&2; exit 1; }

RP=$(free_port)
RT=$(free_port)
redis-server --bind 127.0.0.1 --port "$RP" --tls-port "$RT" --tls-cert-file "$TMP/r.pem" --tls-key-file "$TMP/r.key" \
    --tls-ca-cert-file "$TMP/ca.pem" --tls-auth-clients no --save '' --appendonly no --dir "$TMP" >/dev/null &
RPID=$!
PIDS+=($RPID)
wait_port "$RP" && wait_port "$RT" || { echo "redis did not start" >&2; exit 1; }

echo "| Redis link | TLS | hs/s | resumed | p50 ms | p99 ms | node CPU s/1000 hs | Redis CPU s/1000 hs |"
echo "|---|---|---|---|---|---|---|---|"
for link in plain tls; do
    NP=$(free_port)
    if [ "$link" = plain ]; then
        args=(--redis "redis://127.0.0.1:$RP")
    else
        args=(--redis "rediss://127.0.0.1:$RT" --redis-ca "$TMP/ca.pem")
    fi
    "$SERVER" --listen "127.0.0.1:$NP" --workers 2 --cert "$TMP/srv.pem" --key "$TMP/srv.key" \
        --seal-secret-file "$TMP/seal.secret" "${args[@]}" --log-level warn >>"$TMP/node.log" 2>&1 &
    NPID=$!
    PIDS+=($NPID)
    wait_port "$NP" || { echo "node did not start" >&2; cat "$TMP/node.log" >&2; exit 1; }
    # The workers connect to Redis in the background: warm up until sessions resume.
    timeout 30 "$BENCH" --target "127.0.0.1:$NP" --connections 200 --concurrency 4 --quiet >/dev/null 2>&1
    for v in 1.2 1.3; do
        n0=$(tree_ticks "$NPID")
        r0=$(tree_ticks "$RPID")
        timeout $((SECS + 30)) "$BENCH" --target "127.0.0.1:$NP" --tls "$v" --mode id --duration "$SECS" --concurrency 16 \
            --quiet --json "$TMP/b.json" >/dev/null 2>&1
        n1=$(tree_ticks "$NPID")
        r1=$(tree_ticks "$RPID")
        hz=$(getconf CLK_TCK)
        jq -r --arg link "$link" --arg v "$v" --argjson nt "$((n1 - n0))" --argjson rt "$((r1 - r0))" --argjson hz "$hz" '
            .handshakes.total as $t |
            "| \($link) | \($v) | \(.handshakes.total_per_sec | floor) | \(.resumption.rate) | \(.latency_ms.resumed.p50 // "-") | \(.latency_ms.resumed.p99 // "-") | \(if $t > 0 then ($nt / $hz * 1000 / $t * 1000 | floor) / 1000 else "-" end) | \(if $t > 0 then ($rt / $hz * 1000 / $t * 1000 | floor) / 1000 else "-" end) |"' \
            "$TMP/b.json"
    done
    kill "$NPID"
    wait "$NPID" 2>/dev/null
done
