#!/usr/bin/env bash
# Goal check, not a test: is tlscache-bench a bottleneck? Against one `openssl s_server`, compares
# its handshake rate with `openssl s_time` (sequential, one connection at a time) for new and
# reused sessions in TLS 1.2 and 1.3, interleaving the two tools to share any noise, then shows
# how the bench scales with --concurrency. Prints a Markdown table.
#   bench/vs_s_time.sh [BUILD_DIR] [SECONDS]
set -u
BUILD=${1:-build}
SECS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/$BUILD/bench/tlscache-bench
[ -x "$BENCH" ] || BENCH=$BUILD/bench/tlscache-bench
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
    -days 1 -subj /CN=localhost 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$PORT" -cert "$TMP/cert.pem" -key "$TMP/key.pem" -quiet -naccept 10000000 \
    </dev/null >"$TMP/s_server.log" 2>&1 &
PIDS+=($!)
SPID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

server_ticks() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }

# s_time's own rate is per user-CPU second and its wall time is whole seconds: time it ourselves.
s_time_rate() {
    local t0 t1 n out peruser
    t0=$(date +%s.%N)
    out=$(timeout $((SECS + 20)) openssl s_time -connect "127.0.0.1:$PORT" "-$1" "-tls$2" -time "$SECS" 2>&1)
    t1=$(date +%s.%N)
    n=$(sed -n 's/^\([0-9]*\) connections in [0-9]* real seconds.*/\1/p' <<<"$out" | head -1)
    peruser=$(sed -n 's/.*s; \([0-9.]*\) connections\/user sec.*/\1/p' <<<"$out" | head -1)
    # rate, and user CPU microseconds per connection (s_time does not report sys time)
    echo "$(echo "scale=1; ${n:-0} / ($t1 - $t0)" | bc) $(echo "scale=0; 1000000 / ${peruser:-1}" | bc)"
}

bench_rate() {
    timeout $((SECS + 20)) "$BENCH" --target "127.0.0.1:$PORT" --tls "$2" --mode "$1" --duration "$SECS" \
        --concurrency "$3" --quiet --json "$TMP/b.json" >/dev/null 2>&1
    jq -r '"\(.handshakes.total_per_sec) \(.client_cpu.percent_of_one_core) \(.resumption.rate // "-")
            \(if .handshakes.total > 0 then (.client_cpu.user_sec * 1e6 / .handshakes.total | floor) else "-" end)"' "$TMP/b.json" | tr '\n' ' '
    echo
}

echo "| TLS | sessions | s_time conn/s | s_time user µs/conn | bench c=1 hs/s | bench user µs/hs | bench client CPU % (user+sys) | bench resumption |"
echo "|---|---|---|---|---|---|---|---|"
for v in 1.2 1.3; do
    for m in new reuse; do
        mode=full
        [ "$m" = reuse ] && mode=id
        read -r st stus <<<"$(s_time_rate "$m" "${v/./_}")"
        read -r br cpu rate bus <<<"$(bench_rate "$mode" "$v" 1)"
        echo "| $v | $m | $st | $stus | $br | $bus | $cpu | $rate |"
    done
done
echo
echo "| TLS | mode | concurrency | hs/s | client CPU % | s_server CPU % |"
echo "|---|---|---|---|---|---|"
for v in 1.2 1.3; do
    for mode in full id; do
        for c in 1 2 4 8 32; do
            t0=$(server_ticks)
            read -r br cpu rate _ <<<"$(bench_rate "$mode" "$v" "$c")"
            t1=$(server_ticks)
            echo "| $v | $mode | $c | $br | $cpu | $(( (t1 - t0) * 100 / (SECS * $(getconf CLK_TCK)) )) |"
        done
    done
done
