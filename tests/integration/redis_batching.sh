#!/usr/bin/env bash
# The Redis link batches: every request a worker makes during one loop iteration goes out in one
# write (server/redis.c, the uv_prepare flusher). Proven by the worker's own counters, not by a
# timing: under a concurrent bench that keeps the one worker busy, its Redis requests per socket
# write (tlscache_redis_requests_total / tlscache_redis_writes_total) is well above 1, so several
# handshakes' lookups and stores shared a write; and Redis counted as many commands as the worker
# says it sent (tlscache_redis_commands_total), so the counters count what went on the wire.
#
# The load is TLS 1.2 resumption by session ID with the node-local cache off: each handshake is
# one request (a lookup, or the store of a new session), so nothing but batching puts two
# requests in one write.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3 curl bc
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
PROM="python3 $TLSC_ROOT/tests/lib/promcheck.py"
# A build that writes each request on its own gives 1.00; this one gave 2.6 to 5 under load.
MIN_RATIO_X10=${MIN_RATIO_X10:-15}
NAMES=(tlscache_redis_requests_total tlscache_redis_commands_total tlscache_redis_writes_total)
start_redis || exit 1
PA=$(free_port)
AA=$(free_port)
WORKERS=1 LOG_LEVEL=warn start_node A "$PA" --admin "127.0.0.1:$AA" --local-cache 0 || exit 1

# counters: "requests commands writes" from one scrape.
counters() {
    local f=$TLSC_TMP/m.txt
    curl -s -o "$f" --max-time 5 "http://127.0.0.1:$AA/metrics" || return 1
    $PROM query "$f" "${NAMES[0]} worker=all" "${NAMES[1]} worker=all" "${NAMES[2]} worker=all" | tr '\n' ' '
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$AA/readyz")" = 200 ]; }
check "node_ready" wait_for 15 "node A ready" ready

redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
read -r q0 c0 w0 < <(counters)
timeout 150 "$BENCH" --target "127.0.0.1:$PA" --tls 1.2 --mode id --connections 1000 --concurrency 48 --sni a.example \
    --json "$TLSC_TMP/bench.json" >"$TLSC_TMP/bench.txt" 2>&1
hs=$(jq '.handshakes.total' "$TLSC_TMP/bench.json")
echo "bench: $(jq -c '.handshakes' "$TLSC_TMP/bench.json")"
check "bench_ran (600 of 1000 handshakes at least)" [ "${hs:-0}" -ge 600 ]

# The worker publishes its counters once a second: wait until they cover the run's handshakes.
published() {
    read -r q1 c1 w1 < <(counters)
    echo "requests $q0 -> $q1, commands $c0 -> $c1, writes $w0 -> $w1 (want >= $hs more requests)"
    [ "$((q1 - q0))" -ge "$hs" ]
}
check "worker_counted_the_run" wait_for 10 "the worker's counters after the run" published
read -r q1 c1 w1 < <(counters) # wait_for ran `published` in a subshell
dq=$((q1 - q0))
dc=$((c1 - c0))
dw=$((w1 - w0))
echo "requests: $dq, commands: $dc, writes: $dw, requests per write: $(echo "scale=2; $dq / ($dw + ($dw == 0))" | bc)"
check "writes_are_counted" [ "$dw" -gt 0 ]
check "requests_per_write_at_least_$((MIN_RATIO_X10 / 10)).$((MIN_RATIO_X10 % 10)) (several handshakes share a write)" \
    [ "$((10 * dq))" -ge "$((MIN_RATIO_X10 * dw))" ]

# Redis counted what the worker says it sent (its stats writes and PINGs included).
redis_calls() {
    redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_' | grep -v 'config|resetstat\|cmdstat_info' |
        awk -F'[:=,]' '{ s += $3 } END { print s + 0 }'
}
seen=$(redis_calls)
echo "Redis counted $seen commands since the reset, the worker $dc"
# The reset came just before the "before" scrape, which may be up to a second old, and a stats
# write may be queued but not yet counted: they differ by a few once-a-second writes at most.
check "redis_counts_the_same_commands" [ "$(((seen - dc) * (seen - dc) <= 100 * 100))" = 1 ]
finish
