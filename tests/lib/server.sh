# Helpers to run tlscache-server nodes and talk to them with real clients.
# Source after common.sh and certs.sh; needs TLSC_TMP and a PKI in $TLSC_TMP/pki.

SERVER_BIN=${SERVER_BIN:-$TLSC_BIN/server/tlscache-server}

# start_node NAME PORT [extra flags...]: starts a server node (2 workers by default) on
# 127.0.0.1:PORT against $REDIS_PORT; sets NODE_PID_<NAME>. Logs in $TLSC_TMP/NAME.log.
# The nodes run with the server's default --lookup-timeout / --store-timeout (10 / 50 ms), the
# values users get; a test that stalls Redis on purpose opts in to generous ones with
# GENEROUS_TIMEOUTS=1 (--lookup-timeout 200 --store-timeout 500), and so does every test in a
# sanitizer build (ctest sets it there: see tests/integration/CMakeLists.txt).
start_node() {
    local name=$1 port=$2 timeouts=()
    shift 2
    [ "${GENEROUS_TIMEOUTS:-0}" = 1 ] && timeouts=(--lookup-timeout 200 --store-timeout 500)
    "$SERVER_BIN" --listen "127.0.0.1:$port" --workers "${WORKERS:-2}" --node "$name" --cluster test \
        --cert "$TLSC_TMP/pki/default.pem" --key "$TLSC_TMP/pki/default.key" \
        --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/a.key" \
        --cert "$TLSC_TMP/pki/b.pem" --key "$TLSC_TMP/pki/b.key" \
        --redis "${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}" "${timeouts[@]}" \
        --log-level "${LOG_LEVEL:-info}" "$@" >>"$TLSC_TMP/$name.log" 2>&1 &
    local pid=$!
    track "$pid"
    printf -v "NODE_PID_$name" '%s' "$pid"
    wait_port "$port" 15 || { tail -20 "$TLSC_TMP/$name.log" >&2; return 1; }
}

# stop_pid PID: SIGTERM and wait (bounded) for it to exit.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    return 1
}

# sget PORT TLS SNI SESS_IN SESS_OUT: one HTTPS GET with openssl s_client. Prints the server's
# JSON line ("" SNI = none, "" SESS_IN = fresh). Returns non-zero when no reply came.
sget() {
    local port=$1 ver=$2 sni=$3 in=$4 out=$5 args
    args=(-connect "127.0.0.1:$port" -ign_eof -quiet)
    [ "$ver" = 1.2 ] && args+=(-tls1_2) || args+=(-tls1_3)
    [ -n "$sni" ] && args+=(-servername "$sni") || args+=(-noservername)
    [ -n "$in" ] && args+=(-sess_in "$in")
    [ -n "$out" ] && args+=(-sess_out "$out")
    printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' |
        timeout 10 openssl s_client "${args[@]}" 2>/dev/null | grep -a '^{' | head -1 | grep .
}

# jfield JSON FIELD: prints one field of a JSON object.
jfield() { jq -r ".$2" <<<"$1"; }

# worker_pids MASTER_PID: the worker processes of a node, found by parent PID.
worker_pids() { ps -o pid= --ppid "$1" | tr -d ' '; }

# redis_stat FIELD: sum of FIELD over every worker's stats hash.
redis_stat() {
    local total=0 k v
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:stats:*'); do
        v=$(redis-cli -p "$REDIS_PORT" hget "$k" "$1")
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# redis_stat_ge FIELD N: true when FIELD summed over the workers' stats hashes is N or more;
# prints "FIELD=SUM" (for wait_for's "last seen"). Stats are published once a second: poll it
# with `wait_for SECONDS DESCRIPTION redis_stat_ge FIELD N`, never after a sleep.
redis_stat_ge() {
    local v
    v=$(redis_stat "$1")
    echo "$1=$v"
    [ "$v" -ge "$2" ]
}

# sess_id FILE: the lowercase hex session ID of an `sget` session file.
sess_id() { openssl sess_id -in "$1" -noout -text 2>/dev/null | awk '/Session-ID:/ {print tolower($2)}'; }

# revoke_on_two_nodes PORT_A PORT_B NAME: a TLS 1.2 session made on the node at PORT_A and
# resumed on PORT_B (so both nodes' local caches hold it) is revoked as docs/protocol.md says,
# DEL then PUBLISH on tlscache:revoked, through the caller's `rcli` (its Redis, its TLS). Checks,
# named after NAME, that it resumed first, that both nodes listen, and that the next resumption
# on each is a full handshake.
revoke_on_two_nodes() {
    local f=$TLSC_TMP/revoke.$3 r key n ra rb
    sget "$1" 1.2 a.example "" "$f" >/dev/null
    r=$(sget "$2" 1.2 a.example "$f" "")
    check "$3: the session resumes on the second node first" [ "$(jfield "$r" resumed)" = true ]
    key="tlscache:sess:$(sess_id "$f")"
    rcli del "$key" >/dev/null
    n=$(rcli publish tlscache:revoked "$key")
    check "$3: both nodes listen on tlscache:revoked (got $n)" [ "$n" = 2 ]
    ra=$(sget "$1" 1.2 a.example "$f" "")
    rb=$(sget "$2" 1.2 a.example "$f" "")
    check "$3: the next resumption on both nodes is a full handshake" [ "$(jfield "$ra" resumed)/$(jfield "$rb" resumed)" = false/false ]
}
