#!/usr/bin/env bash
# The Redis link batches: every command a worker queues during one loop iteration goes out in one
# write (server/redis.c, the uv_prepare flusher). Proven by the worker's own counters, not by a
# timing: under a concurrent bench that keeps the one worker busy, the worker's Redis commands
# per socket write (tlscache_redis_commands_total / tlscache_redis_writes_total) is well above 1,
# and Redis counted as many commands as the worker says it sent.
#
# The load is TLS 1.2 resumption by session ID with the node-local cache off: every handshake
# but each client's first is one HGET, one command per request, so commands per write above 1 can
# only come from several requests sharing a write.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3 curl
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
PROM="python3 $TLSC_ROOT/tests/lib/promcheck.py"
MIN_RATIO=${MIN_RATIO:-2}
start_redis || exit 1
PA=$(free_port)
AA=$(free_port)
WORKERS=1 start_node A "$PA" --admin "127.0.0.1:$AA" --local-cache 0 --log-level warn || exit 1

# metrics NAME...: one value per name, from one scrape.
metrics() {
    local f=$TLSC_TMP/m.txt q=() n
    curl -s -o "$f" --max-time 5 "http://127.0.0.1:$AA/metrics" || return 1
    for n in "$@"; do q+=("$n worker=all"); done
    $PROM query "$f" "${q[@]}"
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$AA/readyz")" = 200 ]; }
check "node_ready" wait_for 15 "node A ready" ready

redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
read -r c0 w0 < <(metrics tlscache_redis_commands_total tlscache_redis_writes_total | tr '\n' ' ')
timeout 150 "$BENCH" --target "127.0.0.1:$PA" --tls 1.2 --mode id --connections 3000 --concurrency 48 --sni a.example \
    --json "$TLSC_TMP/bench.json" >"$TLSC_TMP/bench.txt" 2>&1
check "bench_ran_and_resumed" [ "$(jq '.handshakes.resumed > 2000' "$TLSC_TMP/bench.json")" = true ]

# The worker publishes its counters once a second: wait until they cover the run's lookups.
lookups=$(jq '.handshakes.resumed' "$TLSC_TMP/bench.json")
published() {
    read -r c1 w1 < <(metrics tlscache_redis_commands_total tlscache_redis_writes_total | tr '\n' ' ')
    echo "commands $c0 -> $c1, writes $w0 -> $w1 (want >= $lookups more commands)"
    [ "$((c1 - c0))" -ge "$lookups" ]
}
check "worker_counted_the_run" wait_for 10 "the worker's counters after the run" published
dc=$((c1 - c0))
dw=$((w1 - w0))
echo "commands: $dc, writes: $dw, commands per write: $(echo "scale=2; $dc / ($dw + ($dw == 0))" | bc)"
check "writes_are_counted" [ "$dw" -gt 0 ]
check "commands_per_write_at_least_$MIN_RATIO (several requests share a write)" [ "$dc" -ge "$((MIN_RATIO * dw))" ]

# Redis saw what the worker says it sent (the worker's stats writes and the PINGs included):
# the counter counts commands, not requests or bytes.
redis_calls() { redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_' | grep -v 'config|resetstat\|cmdstat_info' |
    awk -F'[:=,]' '{ s += $3 } END { print s + 0 }'; }
seen=$(redis_calls)
echo "Redis counted $seen commands since the reset, the worker $dc"
# The reset came before the "before" scrape, and a stats write may be queued but not yet
# counted, so the two differ by at most a couple of the worker's once-a-second writes.
check "redis_counts_the_same_commands" [ "$(((seen - dc) * (seen - dc) <= 100 * 100))" = 1 ]
finish
