#!/usr/bin/env bash
# TLS terminators side by side, in one run on one machine, each proxying to the same plain-HTTP
# backend (nginx serving static files on loopback): tlscache (`--backend`; `tlscache`: sessions in
# Redis, TLS 1.3 stateful tickets; `tlscache_tickets`: stateless tickets under the key daemon's
# shared keys, the kind of ticket the others issue, valid on every node), HAProxy (mode tcp, ssl),
# hitch, stunnel4 and nginx `stream` (ssl). Three measurements per peer:
#   (a) short connections, one HTTP request each (tlscache-bench --request), TLS 1.3 with
#       resumption, random balancing over 2 instances of the peer: requests/s, resumption %,
#       terminator CPU per 1000 requests (utime+stime of the peer's processes; for tlscache also
#       its Redis, reported in a column of its own and included in the total);
#   (b) keep-alive bulk: one curl connection downloading a --bulk-mb file --bulk-count times from
#       one instance: throughput and terminator CPU seconds per GiB moved;
#   (c) idle connections: --idle TLS connections held open (bench/idle_conns.py) on one instance;
#       the RSS growth of the peer's processes, per 1000 connections.
# The backend's own CPU and memory are the same for every peer and counted for none.
#
#   bench/proxy_compare.sh [--build DIR] [--secs N] [--concurrency C] [--workers W]
#        [--bulk-mb M] [--bulk-count K] [--idle N] [--peers "tlscache tlscache_tickets haproxy hitch stunnel nginx"]
#        [--out FILE.md] [--tsv FILE]
# Binaries come from --build (default build/); BENCH=, SERVER= override each one.
#
# A benchmark, not a test: it asserts nothing (bench/proxy_compare_check.sh checks that every
# row has numbers). Peers run one at a time; every process it starts is ended by PID; every loop
# and client is bounded in count and time; all traffic is on 127.0.0.1.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BUILD=$ROOT/build
SECS=5
CONC=16
WORKERS=$(nproc)
BULK_MB=64
BULK_COUNT=8
IDLE=1000
OUT=
TSV=
PEERS="tlscache tlscache_tickets haproxy hitch stunnel nginx"
usage="usage: $0 [--build DIR] [--secs N] [--concurrency C] [--workers W] [--bulk-mb M] [--bulk-count K] [--idle N] [--peers LIST] [--out FILE] [--tsv FILE]"
num() { case $2 in '' | *[!0-9]*) echo "$1: not a number: $2" >&2; exit 2 ;; esac; [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || { echo "$1: $2 not in $3..$4" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
    case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --secs) num "$1" "$2" 1 600; SECS=$2; shift 2 ;;
    --concurrency) num "$1" "$2" 1 1000; CONC=$2; shift 2 ;;
    --workers) num "$1" "$2" 1 64; WORKERS=$2; shift 2 ;;
    --bulk-mb) num "$1" "$2" 1 4096; BULK_MB=$2; shift 2 ;;
    --bulk-count) num "$1" "$2" 1 1000; BULK_COUNT=$2; shift 2 ;;
    --idle) num "$1" "$2" 1 10000; IDLE=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tsv) TSV=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
    esac
done
BENCH=${BENCH:-$BUILD/bench/tlscache-bench}
SERVER=${SERVER:-$BUILD/server/tlscache-server}
need=("$BENCH")
DAEMON=${DAEMON:-$BUILD/cache-daemon/tlscache-daemon}
case " $PEERS " in *" tlscache "* | *" tlscache_tickets "*) need+=("$SERVER") ;; esac
case " $PEERS " in *" tlscache_tickets "*) need+=("$DAEMON") ;; esac
for b in "${need[@]}"; do [ -x "$b" ] || { echo "missing $b (--build DIR, or BENCH/SERVER=...)" >&2; exit 1; }; done
tools="nginx redis-server openssl jq bc curl python3"
for p in $PEERS; do
    case $p in
    tlscache | tlscache_tickets | nginx) ;;
    haproxy) tools="$tools haproxy" ;;
    hitch) tools="$tools hitch" ;;
    stunnel) tools="$tools stunnel4" ;;
    *) echo "unknown peer $p (tlscache tlscache_tickets haproxy hitch stunnel nginx)" >&2; exit 2 ;;
    esac
done
for t in $tools; do command -v $t >/dev/null || { echo "missing $t (scripts/setup.sh installs it)" >&2; exit 1; }; done
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
case " $PEERS " in *" nginx "*)
    if ! nginx -V 2>&1 | grep -q -- '--with-stream[^_=]' && [ ! -f "$STREAM_MOD" ]; then
        echo "nginx has no stream module (Debian: libnginx-mod-stream)" >&2
        exit 1
    fi ;;
esac
# A stream module built in needs no load_module; a dynamic one does.
LOAD_STREAM=
nginx -V 2>&1 | grep -q -- '--with-stream=dynamic' && LOAD_STREAM="load_module $STREAM_MOD;"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-pcompare.XXXXXX")
PIDS=()      # the peer's processes: stopped after each peer
STORE_PID=   # tlscache's Redis (one of PIDS)
BACKEND_PID= # the nginx backend, for the whole run
stop_all() {
    stop_pids "${PIDS[@]:-}"
    PIDS=()
    STORE_PID=
}
WWW=
trap 'stop_all; stop_pids "$BACKEND_PID"; rm -rf "$TMP" ${WWW:+"$WWW"}' EXIT
bench_secrets "$TMP" || exit 1
PKI=$TMP/pki
TCK=$(getconf CLK_TCK)

# Resident set (KiB) of PIDs and descendants.
tree_rss() {
    local total=0 p r
    for p in $(tree_pids "$@"); do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${r:-0}))
    done
    echo $total
}
# The peer's processes without tlscache's Redis.
peer_pids() {
    local p
    for p in "${PIDS[@]}"; do [ "$p" != "$STORE_PID" ] && echo "$p"; done
}

# --- the backend: nginx, plain HTTP, static files -------------------------------------------------
# Readable by the backend's workers (nginx started by root runs them as nobody), unlike $TMP.
WWW=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-pcompare-www.XXXXXX")
chmod 755 "$WWW"
mkdir -p "$TMP/backend/logs"
head -c 1024 /dev/urandom >"$WWW/small"
head -c $((BULK_MB * 1048576)) /dev/zero >"$WWW/big"
chmod 644 "$WWW/small" "$WWW/big"
BPORT=$(free_port)
BUSER= # nginx started by root runs its workers as nobody, who may not read a 0700 TMPDIR
[ "$(id -u)" = 0 ] && BUSER="user root;"
cat >"$TMP/backend/nginx.conf" <<CONF
$BUSER
worker_processes 1;
daemon off;
pid $TMP/backend/nginx.pid;
error_log $TMP/backend/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $TMP/backend/tmp; proxy_temp_path $TMP/backend/tmp; fastcgi_temp_path $TMP/backend/tmp;
    uwsgi_temp_path $TMP/backend/tmp; scgi_temp_path $TMP/backend/tmp;
    sendfile on;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    client_header_timeout 120s;
    server {
        listen 127.0.0.1:$BPORT backlog=4096;
        root $WWW;
    }
}
CONF
nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf" >>"$TMP/backend/logs/stdout.log" 2>&1 &
BACKEND_PID=$!
wait_port "$BPORT" || exit 1

# --- the peers: start_PEER N starts N instances, sets PORTS (space separated) and PIDS ------------
# tlscache: sessions in Redis (--resumption cache: TLS 1.3 stateful tickets, a store per handshake).
start_tlscache() { start_tlscache_with "$1" --resumption cache --seal-secret-file "$TMP/secret"; }
# tlscache_tickets: stateless tickets under the key daemon's shared keys (no Redis per handshake),
# the same kind of ticket the other peers issue, but valid on every node.
start_tlscache_tickets() {
    rm -f "$TMP/keyd.sock"
    "$DAEMON" --secret-file "$TMP/secret" --unix "$TMP/keyd.sock" --log-level warn >>"$TMP/keyd.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do [ -S "$TMP/keyd.sock" ] && break; sleep 0.1; done
    [ -S "$TMP/keyd.sock" ] || { echo "the key daemon did not listen" >&2; return 1; }
    start_tlscache_with "$1" --resumption tickets --keyd "unix:$TMP/keyd.sock" --keyd-secret-file "$TMP/secret"
}
start_tlscache_with() {
    local n=$1 i port rport
    shift
    rport=$(free_port)
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --daemonize no \
        --logfile "$TMP/redis.log" &
    PIDS+=($!)
    STORE_PID=$!
    wait_port "$rport" || return 1
    PORTS=
    for i in $(seq "$n"); do
        port=$(free_port)
        "$SERVER" --listen "127.0.0.1:$port" --workers "$WORKERS" --node "n$i" --cert "$PKI/default.pem" \
            --key "$PKI/default.key" --redis "redis://127.0.0.1:$rport" --log-level warn \
            "$@" --backend "127.0.0.1:$BPORT" --admin off --drain-timeout 1 \
            >>"$TMP/tlscache.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
    redis_clients_ge "$rport" $((n * WORKERS)) || return 1
}

start_haproxy() {
    local n=$1 i port
    PORTS=
    for i in $(seq "$n"); do
        port=$(free_port)
        cat >"$TMP/haproxy$i.cfg" <<CONF
global
    nbthread $WORKERS
    maxconn 8000
    tune.ssl.cachesize 100000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$port ssl crt $PKI/combined.pem ssl-min-ver TLSv1.2
    default_backend be
backend be
    server b1 127.0.0.1:$BPORT
CONF
        haproxy -db -f "$TMP/haproxy$i.cfg" >>"$TMP/haproxy.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

start_hitch() {
    local n=$1 i port
    PORTS=
    for i in $(seq "$n"); do
        port=$(free_port)
        cat >"$TMP/hitch$i.conf" <<CONF
frontend = "[127.0.0.1]:$port"
backend = "[127.0.0.1]:$BPORT"
pem-file = "$PKI/combined.pem"
workers = $WORKERS
daemon = off
tls-protos = TLSv1.2 TLSv1.3
CONF
        # hitch refuses to run its workers as root.
        [ "$(id -u)" = 0 ] && echo 'user = "nobody"' >>"$TMP/hitch$i.conf"
        hitch --config="$TMP/hitch$i.conf" >>"$TMP/hitch.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

start_stunnel() {
    local n=$1 i port
    PORTS=
    for i in $(seq "$n"); do
        port=$(free_port)
        cat >"$TMP/stunnel$i.conf" <<CONF
foreground = yes
pid =
debug = 3
output = $TMP/stunnel$i.log
[tls]
accept = 127.0.0.1:$port
connect = 127.0.0.1:$BPORT
cert = $PKI/default.pem
key = $PKI/default.key
sslVersionMin = TLSv1.2
CONF
        stunnel4 "$TMP/stunnel$i.conf" >>"$TMP/stunnel.out" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

start_nginx() {
    local n=$1 i port dir
    PORTS=
    for i in $(seq "$n"); do
        port=$(free_port)
        dir=$TMP/nginx$i
        mkdir -p "$dir/logs"
        cat >"$dir/nginx.conf" <<CONF
$LOAD_STREAM
worker_processes $WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
stream {
    server {
        listen 127.0.0.1:$port ssl backlog=4096;
        ssl_certificate $PKI/default.pem;
        ssl_certificate_key $PKI/default.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:20m;
        proxy_pass 127.0.0.1:$BPORT;
    }
}
CONF
        nginx -p "$dir" -c "$dir/nginx.conf" >>"$dir/logs/stdout.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

# --- the three measurements: each appends fields to ROW -------------------------------------------
ROWS=$TMP/rows.tsv
: >"$ROWS"
# (a) rps resumed% cpu_ms_per_req redis_ms_per_req errors
short_conns() {
    local peer=$1 targets=() p t0 t1 s0=0 s1=0 json=$TMP/run.json
    for p in $PORTS; do targets+=(--target "127.0.0.1:$p"); done
    # tlscache-bench reads a reply without judging it: first, one request must get a 200 through.
    p=${PORTS# }
    p=$(curl -k -s --max-time 10 -o /dev/null -w '%{http_code}' "https://127.0.0.1:${p%% *}/small")
    if [ "$p" != 200 ]; then
        echo "$peer: GET /small answered $p, not 200" >&2
        ROW="$ROW"$'\t-\t-\t-\t-\t-'
        return
    fi
    t0=$(tree_ticks "${PIDS[@]}")
    [ -n "$STORE_PID" ] && s0=$(tree_ticks "$STORE_PID")
    timeout $((SECS + 30)) "$BENCH" "${targets[@]}" --balance random --tls 1.3 --mode id --duration "$SECS" \
        --concurrency "$CONC" --sni localhost --ticket-wait 300 --request /small --quiet --json "$json" \
        --label "$peer" >/dev/null 2>>"$TMP/bench.err"
    t1=$(tree_ticks "${PIDS[@]}")
    [ -n "$STORE_PID" ] && s1=$(tree_ticks "$STORE_PID")
    if [ ! -s "$json" ]; then
        ROW="$ROW"$'\t-\t-\t-\t-\t-'
        return
    fi
    # CPU seconds per 1000 requests = CPU milliseconds per request.
    ROW="$ROW"$'\t'$(jq -r --argjson ticks $((t1 - t0)) --argjson sticks $((s1 - s0)) --argjson tck "$TCK" --arg store "$STORE_PID" '
        def ms(t): if .handshakes.total > 0 then (t / $tck * 1000 / .handshakes.total * 1000 | round / 1000 | tostring) else "-" end;
        [(.handshakes.total_per_sec | round | tostring),
         (if .resumption.rate == null then "-" else (.resumption.rate * 1000 | round / 10 | tostring) end),
         ms($ticks),
         (if $store == "" then "-" else ms($sticks) end),
         (.errors.total | tostring)] | @tsv' "$json")
    rm -f "$json"
}

# (b) MiB/s cpu_s_per_GiB
bulk() {
    local port urls=() i t0 t1 w0 w1 bytes out
    port=${PORTS# }
    port=${port%% *}
    for i in $(seq "$BULK_COUNT"); do urls+=(-o /dev/null "https://127.0.0.1:$port/big"); done
    t0=$(tree_ticks "${PIDS[@]}")
    w0=$(date +%s.%N)
    out=$(curl -k -s --http1.1 --tlsv1.3 --max-time $((30 + BULK_COUNT * BULK_MB / 8)) \
        -w '%{http_code} %{size_download}\n' "${urls[@]}" 2>>"$TMP/curl.err")
    w1=$(date +%s.%N)
    t1=$(tree_ticks "${PIDS[@]}")
    bytes=$(echo "$out" | awk '$1 == 200 {s += $2} END {print s + 0}')
    if [ "$bytes" -ne $((BULK_COUNT * BULK_MB * 1048576)) ]; then
        echo "$peer bulk: $bytes bytes, not $((BULK_COUNT * BULK_MB * 1048576))" >&2
        ROW="$ROW"$'\t-\t-'
        return
    fi
    ROW="$ROW"$'\t'$(echo "scale=1; $bytes / 1048576 / ($w1 - $w0)" | bc)
    ROW="$ROW"$'\t'$(echo "scale=3; ($t1 - $t0) / $TCK / ($bytes / 1073741824)" | bc | sed 's/^\./0./')
}

# (c) MiB of RSS per 1000 idle connections, held
idle() {
    local port r0 r1 line held=0 last cur
    port=${PORTS# }
    port=${port%% *}
    r0=$(tree_rss $(peer_pids))
    coproc IDLEC { exec python3 "$ROOT/bench/idle_conns.py" 127.0.0.1 "$port" "$IDLE" 120 2>>"$TMP/idle.err"; }
    local cpid=$IDLEC_PID
    if read -r -t 125 line <&"${IDLEC[0]}"; then held=${line#open }; fi
    # The server may still be finishing the last handshakes: read until two readings agree (<= 5 s).
    last=-1
    for _ in $(seq 10); do
        cur=$(tree_rss $(peer_pids))
        [ "$cur" = "$last" ] && break
        last=$cur
        sleep 0.5
    done
    r1=$cur
    exec {IDLEC[1]}>&-
    stop_pids "$cpid"
    if [ "${held:-0}" -lt 1 ] 2>/dev/null; then
        ROW="$ROW"$'\t-\t0'
        return
    fi
    ROW="$ROW"$'\t'$(echo "scale=2; ($r1 - $r0) / 1024 * 1000 / $held" | bc | sed 's/^\./0./;s/^-\./-0./')$'\t'$held
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for peer in $PEERS; do
    ROW=$peer
    "start_$peer" 2 || { echo "could not start $peer:" >&2; tail -n 5 "$TMP/$peer"*.log "$TMP/$peer"*/logs/*.log >&2 2>/dev/null; stop_all; printf '%s\t-\t-\t-\t-\t-\t-\t-\t-\t0\n' "$peer" >>"$ROWS"; continue; }
    short_conns "$peer"
    stop_all
    "start_$peer" 1 || { echo "could not restart $peer" >&2; stop_all; printf '%s\t-\t-\t-\n' "$ROW" >>"$ROWS"; continue; }
    bulk
    idle
    stop_all
    echo "$ROW" >>"$ROWS"
done
[ -n "$TSV" ] && cp "$ROWS" "$TSV"

# --- the report -----------------------------------------------------------------------------------
report() {
    echo "## TLS terminators side by side: tlscache --backend, HAProxy, hitch, stunnel4, nginx stream"
    echo
    echo "Made by \`bench/proxy_compare.sh --secs $SECS --concurrency $CONC --workers $WORKERS --bulk-mb $BULK_MB --bulk-count $BULK_COUNT --idle $IDLE\`"
    echo "on $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(openssl version | cut -d' ' -f1-2),"
    echo "$(nginx -v 2>&1 | cut -d' ' -f3), HAProxy $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f3), hitch $(hitch --version 2>&1 | head -1 | awk '{print $NF}'),"
    echo "stunnel $(stunnel4 -version 2>&1 | awk '/^stunnel/ {print $2; exit}'), redis $(redis-server --version | cut -d' ' -f3 | tr -d 'v='); clients and backend on the same machine."
    echo "Backend: one nginx worker serving static files over plain HTTP on loopback (its CPU counted for no peer)."
    echo "(a) tlscache-bench --request /small (1 KiB), TLS 1.3, one request per connection, ${SECS} s, concurrency $CONC,"
    echo "random balancing over 2 instances of the peer (tlscache: 2 nodes sharing one Redis, TLS 1.3 stateful tickets stored"
    echo "there; tlscache_tickets: 2 nodes issuing stateless tickets under one key daemon's keys; the others: 2 independent"
    echo "processes, each with its own session cache / ticket key). CPU = utime+stime of the peer's processes per 1000"
    echo "requests, in seconds (tlscache: + its Redis, also shown apart). (b) one curl connection (HTTP/1.1 keep-alive)"
    echo "downloading a $BULK_MB MiB file $BULK_COUNT times from one instance. (c) $IDLE idle TLS 1.3 connections held open"
    echo "on one instance: growth of the peer's resident memory (tlscache: without Redis). Load average before: $LOAD0."
    echo
    echo "| peer | (a) requests/s | resumed % (2 nodes) | CPU s / 1000 req | of which Redis | errors | (b) MiB/s | CPU s / GiB | (c) RSS MiB / 1000 idle | idle held |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    while IFS=$'\t' read -r peer rps rate cpu store errs mibs cpug rss held; do
        echo "| $peer | $rps | $rate | $cpu | $store | $errs | $mibs | $cpug | $rss | $held |"
    done <"$ROWS"
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
