#!/usr/bin/env bash
# What Redis does per handshake, by command shape: INFO commandstats around one tlscache-bench
# run per row (TLS 1.2 / 1.3, full / resumed by ID), with the node-local cache off and on.
# Prints, per row and command, calls per handshake and Redis microseconds per handshake; then,
# per row, what one Redis core carries (docs/scaling.md): Redis CPU (user + sys, so its socket
# reads and writes too) per handshake and the handshakes per second that makes one core, bytes
# on the wire per handshake both ways, the latency redis-cli --latency saw during the run, and
# the memory one session record takes (MEMORY USAGE of real records, and used_memory growth
# per new key, for TLS 1.2 and 1.3).
#
#   bench/commandstats.sh [--build DIR] [--secs N] [--concurrency C] [--workers W]
#
# A measurement, not a test: it asserts nothing. Every process it starts is ended by PID.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
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
for t in redis-server redis-cli jq awk bc; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-cmdstats.XXXXXX")
PIDS=()
stop_all() {
    stop_pids "${PIDS[@]:-}"
    PIDS=()
}
trap 'stop_all; rm -rf "$TMP"' EXIT
bench_secrets "$TMP" || exit 1
RPORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --logfile "$TMP/redis.log" &
PIDS+=($!)
wait_port "$RPORT" || exit 1

echo "| local cache | TLS | mode | handshakes | resumed % | hit split (L1 / Redis / miss) | command | calls / handshake | Redis µs / handshake |"
echo "|---|---|---|---|---|---|---|---|---|"
: >"$TMP/summary"
: >"$TMP/memory"
info_field() { redis-cli -p "$RPORT" info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }
redis_cpu() { redis-cli -p "$RPORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'; }
sess_keys() { redis-cli -p "$RPORT" --scan --pattern 'tlscache:sess:*' | grep -c .; }
# mem_usage PROTO: the mean MEMORY USAGE (SAMPLES 0: every field counted) of up to 200 records of
# PROTO, read in two pipelines (redis-cli reads commands from stdin).
mem_usage() {
    redis-cli -p "$RPORT" --scan --pattern 'tlscache:sess:*' | head -2000 >"$TMP/keys"
    sed 's/^/HGET /; s/$/ proto/' "$TMP/keys" | redis-cli -p "$RPORT" | paste -d' ' "$TMP/keys" - |
        awk -v p="$1" '$2 == p { print $1 }' | head -200 | sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' | redis-cli -p "$RPORT" |
        awk '{ s += $1; n++ } END { if (n) printf "%.0f (%d records)", s / n, n; else print "-" }'
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
    # Redis's CPU with the node idle (its cron, the workers' stats writes, the latency probe), per
    # second, taken off each row's CPU: on a busy machine at low rates it is a large share.
    c0=$(redis_cpu)
    t0=$(date +%s.%N)
    redis-cli -p "$RPORT" --latency -i "$SECS" </dev/null >/dev/null 2>&1
    idle_rate=$(echo "($(redis_cpu) - $c0) / ($(date +%s.%N) - $t0)" | bc -l)
    for tls in 1.2 1.3; do
        for mode in full id; do
            mem0=$(info_field memory used_memory)
            keys0=$(sess_keys)
            redis-cli -p "$RPORT" config resetstat >/dev/null
            cpu0=$(redis_cpu)
            t0=$(date +%s.%N)
            # Not on a terminal, redis-cli --latency -i N samples for N s, then prints "min max avg samples" (ms).
            redis-cli -p "$RPORT" --latency -i "$SECS" </dev/null >"$TMP/latency" 2>/dev/null &
            lpid=$!
            PIDS+=($lpid)
            "$BENCH" --target "127.0.0.1:$port" --tls "$tls" --mode "$mode" --duration "$SECS" --concurrency "$CONC" \
                --sni localhost --quiet --json "$TMP/run.json" --redis "redis://127.0.0.1:$RPORT" --redis-settle 1500 \
                >"$TMP/bench.out" 2>>"$TMP/bench.err"
            # Taken at once: the stats writers' own HSETs (one per worker a second) are in it, and said so below.
            redis-cli -p "$RPORT" info commandstats | tr -d '\r' | grep '^cmdstat_' >"$TMP/cs"
            cpu1=$(redis_cpu)
            busy=$(echo "$cpu1 - $cpu0 - $idle_rate * ($(date +%s.%N) - $t0)" | bc -l)
            nin=$(info_field stats total_net_input_bytes)
            nout=$(info_field stats total_net_output_bytes)
            mem1=$(info_field memory used_memory)
            keys1=$(sess_keys)
            wait "$lpid" 2>/dev/null
            lat=$(awk 'NF >= 4 { printf "%s / %s / %s", $1, $3, $2 }' "$TMP/latency")
            hs=$(jq '.handshakes.total' "$TMP/run.json")
            rate=$(jq -r 'if .resumption.rate == null then "-" else (.resumption.rate * 1000 | round / 10 | tostring) end' "$TMP/run.json")
            hits=$(jq -r '.server.total | [.lookups_l1_hit, .lookups_hit, .lookups_miss] | map(tostring) | join(" / ")' \
                "$TMP/run.json" 2>/dev/null)
            awk -F'[:=,]' -v hs="$hs" -v l1="$l1" -v tls="$tls" -v mode="$mode" -v rate="$rate" -v hits="${hits:--}" '
                { cmd = $1; sub(/^cmdstat_/, "", cmd); calls = $3; usec = $5
                  if (hs > 0) printf "| %s | %s | %s | %d | %s | %s | %s | %.3f | %.2f |\n", l1, tls, mode, hs, rate, hits, cmd, calls / hs, usec / hs }' "$TMP/cs"
            # What Redis ran for the workers, not the probes (ping) or the reads of the bench and of this
            # script (scan, info, config); the time of the commands themselves (EXEC and EVAL time holds theirs).
            awk -F'[:=,]' -v hs="$hs" -v l1="$l1" -v tls="$tls" -v mode="$mode" -v cpu="$busy" \
                -v nin="$nin" -v nout="$nout" -v lat="${lat:--}" '
                $1 !~ /config|info|ping|scan/ { calls += $3; if ($1 !~ /_(multi|exec|eval)$/) usec += $5 }
                END { if (hs == 0) exit
                      # Below the idle noise: Redis did next to nothing for this row.
                      c = cpu > 0 ? sprintf("%.1f", cpu * 1e6 / hs) : "≈ 0"; k = cpu > 0 ? sprintf("%.0f", hs / cpu) : "-"
                      printf "| %s | %s | %s | %d | %.2f | %.1f | %s | %s | %.0f | %.0f | %s |\n", l1, tls, mode, hs,
                      calls / hs, usec / hs, c, k, nin / hs, nout / hs, lat }' "$TMP/cs" >>"$TMP/summary"
            if [ "$mode" = full ] && [ "$keys1" -gt "$keys0" ]; then
                echo "| $tls | $(mem_usage "TLSv$tls") | $(((mem1 - mem0) / (keys1 - keys0))) ($((keys1 - keys0)) new keys) |" >>"$TMP/memory"
            fi
        done
    done
    kill -TERM "$spid"
    for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
done
echo
echo "Per row, all commands together (the workers' stats writes and the bench's reads included):"
echo
echo "| local cache | TLS | mode | handshakes | commands / handshake | commands' own µs / handshake | Redis CPU µs / handshake | handshakes / s per Redis core | bytes to Redis / handshake | bytes from Redis / handshake | redis-cli --latency min / avg / max ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
cat "$TMP/summary"
echo
echo "Memory per session record (bytes), from the full-handshake rows:"
echo
echo "| TLS | MEMORY USAGE (mean) | used_memory growth per new key |"
echo "|---|---|---|"
cat "$TMP/memory"
echo
echo "Redis CPU: used_cpu_user + used_cpu_sys over the run, less what the same Redis used per second with the node"
echo "idle (measured for $SECS s before each pass), so the cron, the stats writes and the latency probe are not charged."
echo "Each row: one tlscache-bench run of $SECS s, concurrency $CONC, one node with $WORKERS workers; commands counted"
echo "by Redis between CONFIG RESETSTAT and the end of the run, the workers' once-a-second stats writes included (hset,"
echo "multi/exec/expire at 1/s per worker, and the bench's own reads: scan, hgetall)."
