#!/usr/bin/env bash
# Side by side, in one run on one machine, with the same tlscache-bench client and the same
# certificate: tlscache (workers + Redis + key daemon; one node and two), nginx with a shared
# session cache, HAProxy with its shared cache, and openssl s_server; TLS 1.2 and 1.3; full
# handshakes, resumption by ID / stateful TLS 1.3 tickets, stateless tickets, and `hrr`: TLS 1.3
# stateful tickets through a HelloRetryRequest (server groups P-256 only, the client offering an
# X25519 key share first, then P-256: every handshake takes the second ClientHello), and `mix`:
# TLS 1.2 session IDs with a new session every 2nd connection (--new-session-every 2). Per row:
# handshakes/s, resumption rate, latency, and server CPU (utime+stime of every server process,
# plus Redis and the key daemon for tlscache) per 1000 handshakes, with the ratio to nginx; for
# tlscache also where its lookups were answered (node-local cache, Redis, miss), from the servers'
# own counters (tlscache-bench --redis).
#
#   bench/compare.sh [--build DIR] [--secs N] [--concurrency "C ..."] [--workers W] [--out FILE.md]
#                    [--csv FILE] [--rows FILE.tsv] [--peers "tlscache nginx haproxy s_server"]
#                    [--configs "cache tickets hrr"]
# --concurrency takes one or more values: each row runs at each (the servers are started once).
# --rows keeps the raw rows (tab-separated, as the report reads them) for bench/compare_ratios.sh,
# which sums several runs up as ratios to nginx with their spread.
# Peers: tlscache (with its node-local cache, the default --local-cache), tlscache_l1off (the same
# with --local-cache 0: every lookup goes to Redis), nginx, haproxy, s_server.
# Binaries come from --build (default build/); BENCH=, SERVER=, DAEMON= override each one.
#
# A benchmark, not a test: it asserts nothing. Servers run one at a time, each is stopped before
# the next starts; every process it starts is ended by PID. The client shares the machine.
#
#   bench/compare.sh proxy [bench/proxy_compare.sh options]
# runs the TLS terminator comparison instead (tlscache --backend against HAProxy mode tcp, hitch,
# stunnel4 and nginx stream in front of one backend: short requests, bulk, idle connections).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
if [ "${1:-}" = proxy ]; then
    shift
    exec "$ROOT/bench/proxy_compare.sh" "$@"
fi
BUILD=$ROOT/build
SECS=5
CONC=16
WORKERS=$(nproc)
OUT=
CSV=
ROWS_OUT=
PEERS="tlscache nginx haproxy s_server"
CONFIGS="cache tickets hrr"
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    --rows) ROWS_OUT=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--secs N] [--concurrency C] [--workers W] [--out FILE] [--csv FILE] [--rows FILE] [--peers LIST] [--configs LIST]" >&2; exit 1 ;;
    esac
done
BENCH=${BENCH:-$BUILD/bench/tlscache-bench}
SERVER=${SERVER:-$BUILD/server/tlscache-server}
DAEMON=${DAEMON:-$BUILD/cache-daemon/tlscache-daemon}
need=("$BENCH")
case " $PEERS " in *" tlscache"*) need+=("$SERVER" "$DAEMON") ;; esac
for b in "${need[@]}"; do [ -x "$b" ] || { echo "missing $b (--build DIR, or BENCH/SERVER/DAEMON=...)" >&2; exit 1; }; done
for t in nginx haproxy redis-server openssl jq bc; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-compare.XXXXXX")
PIDS=()
stop_all() {
    stop_pids "${PIDS[@]:-}"
    PIDS=()
    STORE_PID=
    STORE_URL=
}
trap 'stop_all; rm -rf "$TMP"' EXIT
bench_secrets "$TMP" || exit 1
PKI=$TMP/pki
TCK=$(getconf CLK_TCK)


# --- the peers: start PEER CONFIG NODES sets PORTS (space separated) and PIDS ------------------
# CONFIG is "cache" (session IDs, TLS 1.3 stateful tickets), "tickets" (stateless tickets) or
# "hrr" (as cache, with the key exchange limited to P-256, so an X25519-first client gets a
# HelloRetryRequest).
HRR_SERVER_GROUP=P-256
HRR_CLIENT_GROUPS=X25519:P-256
start_tlscache() {
    local config=$1 nodes=$2 i port res=(--resumption cache --seal-secret-file "$TMP/secret") groups=()
    local rport
    [ "$config" = hrr ] && groups=(--groups "$HRR_SERVER_GROUP")
    rport=$(free_port)
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --daemonize no \
        --logfile "$TMP/redis.log" &
    PIDS+=($!)
    STORE_PID=$! # its share of the CPU is reported in a column of its own
    wait_port "$rport" || return 1
    if [ "$config" = tickets ]; then
        rm -f "$TMP/keyd.sock"
        "$DAEMON" --secret-file "$TMP/secret" --unix "$TMP/keyd.sock" --log-level warn >>"$TMP/keyd.log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 50); do [ -S "$TMP/keyd.sock" ] && break; sleep 0.1; done
        res=(--resumption tickets --keyd "unix:$TMP/keyd.sock" --keyd-secret-file "$TMP/secret")
    fi
    PORTS=
    for i in $(seq "$nodes"); do
        port=$(free_port)
        "$SERVER" --listen "127.0.0.1:$port" --workers "$WORKERS" --node "n$i" --cert "$PKI/default.pem" \
            --key "$PKI/default.key" --redis "redis://127.0.0.1:$rport" --log-level warn --admin off "${res[@]}" "${groups[@]}" \
            --local-cache "${LOCAL_CACHE:-64m}" \
            >>"$TMP/tlscache.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
    STORE_URL=redis://127.0.0.1:$rport # the bench reads the nodes' counters there (the hit split)
    sleep 1 # workers connect to Redis (and the key daemon) before the first handshake
}

# The same, without the node-local cache.
start_tlscache_l1off() { LOCAL_CACHE=0 start_tlscache "$@"; }

start_nginx() {
    local config=$1 nodes=$2 i port dir tickets=off curve=auto
    [ "$config" = tickets ] && tickets=on
    [ "$config" = hrr ] && curve=prime256v1
    PORTS=
    for i in $(seq "$nodes"); do
        port=$(free_port)
        dir=$TMP/nginx$i
        mkdir -p "$dir/logs"
        cat >"$dir/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $PKI/default.pem;
        ssl_certificate_key $PKI/default.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:20m;
        ssl_session_timeout 5m;
        ssl_session_tickets $tickets;
        ssl_ecdh_curve $curve;
        location / { return 200 "ok\n"; }
    }
}
CONF
        nginx -p "$dir" -c "$dir/nginx.conf" >>"$dir/logs/stdout.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

start_haproxy() {
    local config=$1 nodes=$2 i port notix=no-tls-tickets curves=
    [ "$config" = tickets ] && notix=
    [ "$config" = hrr ] && curves="curves $HRR_SERVER_GROUP"
    PORTS=
    for i in $(seq "$nodes"); do
        port=$(free_port)
        cat >"$TMP/haproxy$i.cfg" <<CONF
global
    nbthread $WORKERS
    tune.ssl.cachesize 100000
    tune.ssl.lifetime 300
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$port ssl crt $PKI/combined.pem ssl-min-ver TLSv1.2 $notix $curves
    http-request return status 200 content-type text/plain string ok
CONF
        haproxy -db -f "$TMP/haproxy$i.cfg" >>"$TMP/haproxy.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

start_s_server() {
    local config=$1 nodes=$2 i port opt=-no_ticket
    [ "$config" = tickets ] && opt=
    [ "$config" = hrr ] && opt="-no_ticket -groups $HRR_SERVER_GROUP"
    PORTS=
    for i in $(seq "$nodes"); do
        port=$(free_port)
        openssl s_server -accept "127.0.0.1:$port" -cert "$PKI/default.pem" -key "$PKI/default.key" -www -quiet \
            -naccept 100000000 $opt </dev/null >>"$TMP/s_server.log" 2>&1 &
        PIDS+=($!)
        wait_port "$port" || return 1
        PORTS="$PORTS $port"
    done
}

# --- one row: bench the running peer ------------------------------------------------------------
ROWS=$TMP/rows.tsv
: >"$ROWS"
# run_row PEER NODES TLS MODE CONC: MODE is full, id, ticket, hrr (id, the client offering
# $HRR_CLIENT_GROUPS: X25519 first) or mix (id, a new session every 2nd connection).
run_row() {
    local peer=$1 nodes=$2 tls=$3 mode=$4 conc=$5 targets=() p t0 t1 json=$TMP/run.json label bmode=$4 extra=()
    for p in $PORTS; do targets+=(--target "127.0.0.1:$p"); done
    [ "$mode" = hrr ] && bmode=id extra=(--groups "$HRR_CLIENT_GROUPS")
    [ "$mode" = mix ] && bmode=id extra=(--new-session-every 2)
    [ -n "${STORE_URL:-}" ] && extra+=(--redis "$STORE_URL")
    label="$peer/${nodes}n/tls$tls/$mode/c$conc"
    t0=$(tree_ticks "${PIDS[@]}")
    s0=0
    [ -n "${STORE_PID:-}" ] && s0=$(tree_ticks "$STORE_PID")
    timeout $((SECS + 30)) "$BENCH" "${targets[@]}" --balance random --tls "$tls" --mode "$bmode" --duration "$SECS" \
        --concurrency "$conc" --sni localhost --ticket-wait 300 --quiet --json "$json" --label "$label" "${extra[@]}" \
        ${CSV:+--csv "$CSV"} >/dev/null 2>>"$TMP/bench.err"
    t1=$(tree_ticks "${PIDS[@]}")
    s1=0
    [ -n "${STORE_PID:-}" ] && s1=$(tree_ticks "$STORE_PID")
    if [ ! -s "$json" ]; then
        printf '%s\t%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$peer" "$nodes" "$tls" "$mode" "$conc" >>"$ROWS"
        return
    fi
    # CPU seconds per 1000 handshakes = CPU milliseconds per handshake.
    jq -r --arg peer "$peer" --arg nodes "$nodes" --arg tls "$tls" --arg mode "$mode" --arg conc "$conc" \
        --argjson ticks $((t1 - t0)) --argjson sticks $((s1 - s0)) --argjson tck "$TCK" '
        def r(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
        [$peer, $nodes, $tls, $mode, $conc,
         (.handshakes.total_per_sec | round | tostring),
         (if .resumption.rate == null then "-" else (.resumption.rate * 1000 | round / 10 | tostring) end),
         r(.latency_ms.full.p50) + " / " + r(.latency_ms.full.p99),
         r(.latency_ms.resumed.p50) + " / " + r(.latency_ms.resumed.p99),
         (if .handshakes.total > 0 then ($ticks / $tck * 1000 / .handshakes.total * 1000 | round / 1000 | tostring) else "-" end),
         (.client_cpu.percent_of_one_core | round | tostring),
         (.errors.total | tostring),
         (.handshakes.total | tostring),
         (if .handshakes.total > 0 and $sticks > 0 then ($sticks / $tck * 1000 / .handshakes.total * 1000 | round / 1000 | tostring) else "-" end),
         (if .server.total == null then "-" else "\(.server.total.lookups_l1_hit) / \(.server.total.lookups_hit) / \(.server.total.lookups_miss + .server.total.lookups_timeout + .server.total.lookups_error)" end)] | @tsv' "$json" >>"$ROWS"
    rm -f "$json"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for peer in $PEERS; do
    for nodes in 1 2; do
        for config in $CONFIGS; do
            "start_$peer" "$config" "$nodes" || { echo "could not start $peer ($config, $nodes nodes)" >&2; stop_all; continue; }
            for conc in $CONC; do
                if [ "$config" = hrr ]; then # a HelloRetryRequest is TLS 1.3 only
                    run_row "$peer" "$nodes" 1.3 hrr "$conc"
                    continue
                fi
                for tls in 1.2 1.3; do
                    if [ "$config" = cache ]; then
                        [ "$nodes" = 1 ] && run_row "$peer" "$nodes" "$tls" full "$conc"
                        run_row "$peer" "$nodes" "$tls" id "$conc"
                        [ "$tls" = 1.2 ] && run_row "$peer" "$nodes" "$tls" mix "$conc"
                    else
                        run_row "$peer" "$nodes" "$tls" ticket "$conc"
                    fi
                done
            done
            stop_all
        done
    done
done

# --- the report ---------------------------------------------------------------------------------
report() {
    echo "## Side by side: tlscache, nginx, HAProxy, openssl s_server"
    echo
    echo "Made by \`bench/compare.sh --secs $SECS --concurrency \"$CONC\" --workers $WORKERS --peers \"$PEERS\" --configs \"$CONFIGS\"\` on $(date -u +%Y-%m-%d), $(nproc) CPUs"
    echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(openssl version), $(nginx -v 2>&1 | cut -d' ' -f3),"
    echo "HAProxy $(haproxy -v | head -1 | cut -d' ' -f3), $(redis-server --version | cut -d' ' -f3 | tr -d 'v='), the client on the same machine."
    echo "Each row: one tlscache-bench run of ${SECS} s at the concurrency in column C, random balancing over the nodes;"
    echo "\`id\` = TLS 1.2 session IDs / TLS 1.3 stateful tickets (server without tickets), \`ticket\` = stateless tickets,"
    echo "\`hrr\` = \`id\` through a HelloRetryRequest (server groups $HRR_SERVER_GROUP, client $HRR_CLIENT_GROUPS: X25519 first),"
    echo "\`mix\` = TLS 1.2 \`id\` with a new session every 2nd connection. Lookups L1 / Redis / miss: where tlscache's lookups"
    echo "were answered (node-local cache, Redis, neither: a miss, timeout or error), from the nodes' counters in Redis."
    echo "Server CPU = utime+stime of every server process (tlscache: + Redis + key daemon) per 1000 handshakes, in"
    echo "seconds; \"vs nginx\" divides it by nginx's in the same row. The load average before the run was: $LOAD0."
    echo
    echo "| peer | nodes | TLS | mode | C | handshakes/s | resumed % | full p50 / p99 ms | resumed p50 / p99 ms | server CPU s / 1000 hs | of which Redis | vs nginx | lookups L1 / Redis / miss | client CPU % | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    while IFS=$'\t' read -r peer nodes tls mode conc hs rate lf lr cpu ccpu errs total store split; do
        ref=$(awk -F'\t' -v n="$nodes" -v t="$tls" -v m="$mode" -v c="$conc" '$1 == "nginx" && $2 == n && $3 == t && $4 == m && $5 == c {print $10}' "$ROWS")
        ratio=-
        if [ -n "$ref" ] && [ "$ref" != - ] && [ "$cpu" != - ] && [ "$(echo "$ref > 0" | bc)" = 1 ]; then
            ratio=$(echo "scale=2; $cpu / $ref" | bc | sed 's/^\./0./')
        fi
        echo "| $peer | $nodes | $tls | $mode | $conc | $hs | $rate | $lf | $lr | $cpu | $store | $ratio | $split | $ccpu | $errs |"
    done < <(sort -t$'\t' -k2,2 -k3,3 -k4,4 -k5,5n -s "$ROWS")
}
[ -n "$ROWS_OUT" ] && cp "$ROWS" "$ROWS_OUT"
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
