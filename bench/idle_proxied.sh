#!/usr/bin/env bash
# N idle proxied connections on one tlscache-server worker: what each one costs in RSS.
#
#   bench/idle_proxied.sh [--build DIR] [--conns N] [--proxy-protocol v2]
#
# Starts Redis, a backend that accepts and holds connections without a byte either way, and
# tlscache-server (--workers 1, --backend to it); bench/idle_conns.py opens N TLS 1.3
# connections (each one a client socket, a TLS session and a backend socket in the worker) and
# holds them. Prints the worker's private resident memory (RssAnon) before and with them, and
# the growth per connection; it fails when the worker does not hold two sockets per connection.
# The fd limit is raised for this script's processes only (ulimit -n), never system-wide.
# Traffic stays on 127.0.0.1. Default N = 10000, build = build/ (optimized).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=$ROOT/build
N=10000
PP=()
usage="usage: bench/idle_proxied.sh [--build DIR] [--conns N (1..20000)] [--proxy-protocol v1|v2]"
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "$2" && pwd) || exit 2; shift 2 ;;
    --conns)
        [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 20000 ] || { echo "$usage" >&2; exit 2; }
        N=$2
        shift 2
        ;;
    --proxy-protocol) PP=(--proxy-protocol "$2"); shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
    esac
done
SERVER=$BUILD/server/tlscache-server
[ -x "$SERVER" ] || { echo "missing $SERVER (--build DIR)" >&2; exit 1; }
for t in redis-server python3 openssl; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
# Client, worker and backend each hold N descriptors.
ulimit -n $((N * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
[ "$(ulimit -n)" -ge $((N + 512)) ] || { echo "fd limit $(ulimit -n) too low for $N connections (hard limit $(ulimit -Hn))" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-idle.XXXXXX")
PIDS=()
trap 'stop_pids "${PIDS[@]:-}"; [ -n "${KEEP_LOG:-}" ] && cp "$TMP/server.log" "$KEEP_LOG"; rm -rf "$TMP"' EXIT
bench_secrets "$TMP" || exit 1
rss_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a slow shim
RPORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --logfile "$TMP/redis.log" &
PIDS+=($!)
BPORT=$(free_port)
# The backend: accepts and holds every connection (reads nothing: the PROXY header, if any, waits in its buffer).
"$PY" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4096)
held = []
while True:
    held.append(s.accept()[0])' "$BPORT" &
PIDS+=($!)
PORT=$(free_port)
wait_port "$RPORT" && wait_port "$BPORT" || exit 1
"$SERVER" --listen "127.0.0.1:$PORT" --workers 1 --node idle --cert "$TMP/pki/default.pem" --key "$TMP/pki/default.key" \
    --redis "redis://127.0.0.1:$RPORT" --seal-secret-file "$TMP/secret" --log-level "${LOG_LEVEL:-warn}" --admin off \
    --backend "127.0.0.1:$BPORT" "${PP[@]}" --max-conns $((N + 100)) --idle-timeout 3600 --drain-timeout 1 \
    >"$TMP/server.log" 2>&1 &
MASTER=$!
PIDS+=("$MASTER")
wait_port "$PORT" || { cat "$TMP/server.log" >&2; exit 1; }
WORKER=$(ps -o pid= --ppid "$MASTER" | tr -d ' ' | head -n1)
[ -n "$WORKER" ] || { echo "no worker" >&2; exit 1; }
# One connection first, so what every connection shares (OpenSSL's lazy tables, buffers) is in the baseline.
"$PY" "$ROOT/bench/idle_conns.py" 127.0.0.1 "$PORT" 1 20 </dev/null >/dev/null
r0=$(rss_kib "$WORKER")
coproc IDLEC { exec "$PY" "$ROOT/bench/idle_conns.py" 127.0.0.1 "$PORT" "$N" 300 2>>"$TMP/idle.err"; }
cpid=$IDLEC_PID
held=0
if read -r -t 310 line <&"${IDLEC[0]}"; then held=${line#open }; fi
# The worker may still be finishing the last connections: read until two readings agree (<= 10 s).
last=-1
for _ in $(seq 20); do
    cur=$(rss_kib "$WORKER")
    [ "$cur" = "$last" ] && break
    last=$cur
    sleep 0.5
done
r1=$cur
# Each held connection is two sockets in the worker (client, backend): else they were not proxied.
fds=$(find "/proc/$WORKER/fd" -mindepth 1 2>/dev/null | wc -l)
exec {IDLEC[1]}>&-
stop_pids "$cpid"
[ "${held:-0}" -ge 1 ] 2>/dev/null || { echo "no connection held: $(cat "$TMP/idle.err")" >&2; exit 1; }
[ "$fds" -ge $((held * 2)) ] || { echo "the worker had $fds descriptors for $held connections: not all proxied (see --log-level)" >&2; tail -n 5 "$TMP/server.log" >&2; exit 1; }
echo "tlscache-server $("$SERVER" --version 2>&1 | head -n1), 1 worker, --backend 127.0.0.1 ${PP[*]}; $(openssl version)"
echo "idle proxied connections held: $held of $N"
echo "worker RssAnon (its private memory; the shared local cache and counters are left out): $((r0 / 1024)) MiB before, $((r1 / 1024)) MiB with them; $fds descriptors"
echo "RSS per idle proxied connection: $(((r1 - r0) * 1024 / held)) bytes"
[ -s "$TMP/idle.err" ] && sed 's/^/idle_conns: /' "$TMP/idle.err"
exit 0
