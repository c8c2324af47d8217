#!/usr/bin/env bash
# Profiles one server under one tlscache-bench load, for comparing tlscache's worker with nginx's
# on the same step (docs/benchmarks.md, "The worker's own path"):
#
#   bench/profile.sh TOOL PEER TLS MODE LOCAL_CACHE COUNT OUT
#
#   TOOL        perf      `perf record -e cpu-clock -g` on the workers (and Redis) for COUNT seconds
#                         of load at concurrency 4; report with `perf report -i OUT`
#               callgrind the server under valgrind (one worker; nginx with master_process off) for
#                         COUNT connections at concurrency 2; OUT.<pid> per process, read with
#                         `callgrind_annotate --inclusive=yes OUT.<pid>`
#               strace    `strace -c -f` on the workers for COUNT connections at concurrency 4
#   PEER        tlscache or nginx (nginx: ssl_session_cache shared, tickets off)
#   TLS MODE    as tlscache-bench --tls / --mode (1.2 id, 1.3 id, 1.2 full, ...)
#   LOCAL_CACHE tlscache's --local-cache (64m, 0); ignored for nginx
#
# Binaries come from build/ (BENCH=, SERVER= override). Prints the bench's handshake count; every
# process it starts is ended by PID. A measuring aid, not a test: it asserts nothing.
set -u
[ $# -eq 7 ] || { sed -n '2,20p' "$0" >&2; exit 1; }
TOOL=$1 PEER=$2 TLS=$3 MODE=$4 LC=$5 COUNT=$6 OUT=$7
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BENCH=${BENCH:-$ROOT/build/bench/tlscache-bench}
SERVER=${SERVER:-$ROOT/build/server/tlscache-server}
case $TOOL in perf | callgrind | strace) ;; *) echo "TOOL: perf, callgrind or strace" >&2; exit 1 ;; esac
case $PEER in tlscache | nginx) ;; *) echo "PEER: tlscache or nginx" >&2; exit 1 ;; esac
for t in "$TOOL" redis-server nginx jq python3; do [ "$t" = callgrind ] && t=valgrind; command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
T=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-profile.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
bench_secrets "$T" || exit 1

WORKERS=2 VG=()
if [ "$TOOL" = callgrind ]; then
    WORKERS=1
    VG=(valgrind --tool=callgrind --trace-children=yes "--callgrind-out-file=$OUT.%p")
fi
port=$(free_port)
if [ "$PEER" = tlscache ]; then
    rport=$(free_port)
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --daemonize no --logfile "$T/redis.log" &
    PIDS+=($!)
    wait_port "$rport" 1200 || exit 1
    "${VG[@]}" "$SERVER" --listen "127.0.0.1:$port" --workers "$WORKERS" --node n1 --cert "$T/pki/default.pem" \
        --key "$T/pki/default.key" --redis "redis://127.0.0.1:$rport" --log-level warn --admin off --resumption cache \
        --seal-secret-file "$T/secret" --local-cache "$LC" --lookup-timeout 2000 --store-timeout 2000 >"$T/server.log" 2>&1 &
    PIDS+=($!)
else
    mkdir -p "$T/nginx/logs"
    master=on
    [ "$TOOL" = callgrind ] && master=off
    cat >"$T/nginx/nginx.conf" <<CONF
worker_processes $WORKERS;
master_process $master;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/tmp; proxy_temp_path $T/tmp; fastcgi_temp_path $T/tmp; uwsgi_temp_path $T/tmp; scgi_temp_path $T/tmp;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $T/pki/default.pem;
        ssl_certificate_key $T/pki/default.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:20m;
        ssl_session_timeout 5m;
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
CONF
    "${VG[@]}" nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" >"$T/nginx/logs/stdout.log" 2>&1 &
    PIDS+=($!)
fi
wait_port "$port" 1200 || exit 1
sleep 2 # workers connect to Redis (and map the local cache) before the first handshake

# The processes that do the work: the workers (children of the server) and, for tlscache, Redis.
targets() {
    local kids
    kids=$(ps -o pid= --ppid "${PIDS[-1]}" | tr -d ' ' | paste -sd,)
    [ "$PEER" = tlscache ] && kids="$kids,${PIDS[0]}"
    echo "${kids#,}"
}
load=(--duration "$COUNT" --concurrency 4)
[ "$TOOL" != perf ] && load=(--connections "$COUNT" --concurrency 4)
[ "$TOOL" = callgrind ] && load=(--connections "$COUNT" --concurrency 2 --timeout 20000)
case $TOOL in
perf)
    perf record -e cpu-clock -F 2000 -g -p "$(targets)" -o "$OUT" -- sleep $((COUNT + 1)) >/dev/null 2>&1 &
    PROF=$!
    ;;
strace)
    strace -c -f -p "$(targets)" -o "$OUT" 2>/dev/null &
    PROF=$!
    ;;
callgrind) PROF= ;;
esac
sleep 0.5
"$BENCH" --target "127.0.0.1:$port" --tls "$TLS" --mode "$MODE" "${load[@]}" --sni localhost --ticket-wait 2000 \
    --quiet --json "$T/run.json" || exit 1
if [ "$TOOL" = strace ]; then kill -INT "$PROF"; fi
[ -n "$PROF" ] && wait "$PROF"
jq -c '{handshakes: .handshakes.total, full: .handshakes.full, resumed_rate: .resumption.rate, errors: .errors.total}' "$T/run.json"
