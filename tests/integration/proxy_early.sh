#!/usr/bin/env bash
# The early backend connect (server/proxy.c on_hello): when a connection's ClientHello already
# tells its route (an SNI route, or the default route with no ALPN route to compete), the
# backend connect starts then and overlaps the rest of the handshake; nothing is sent to the
# backend before the handshake is done, and a handshake that never finishes takes its backend
# connection with it at --handshake-timeout.
#   - a client that sends its ClientHello and never its Finished: the backend accepts a
#     connection for it all the same (so before any Finished); when the node gives up on the
#     handshake the backend sees that connection end with no byte (no PROXY header), counted as
#     proxy_early_abandoned;
#   - a normal client on the same route: the backend's first bytes are the PROXY v2 header with
#     the handshake's facts; counted as proxy_early_connects and proxy_opened;
#   - with an alpn: route to compete, the default route waits for the handshake: the same stalled
#     client gets no backend connection at all.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl python3 curl
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
T=$TLSC_TMP
PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a slow shim
PEER=("$PY" "$TLSC_ROOT/tests/lib/proxy_peer.py")

# node_stat NODE FIELD: FIELD summed over NODE's workers' stats hashes; node_stat_ge NODE FIELD N.
node_stat() {
    local total=0 k v
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern "tlscache:stats:$1:*"); do
        v=$(redis-cli -p "$REDIS_PORT" hget "$k" "$2")
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
node_stat_ge() {
    local v
    v=$(node_stat "$1" "$2")
    echo "$1 $2=$v"
    [ "$v" -ge "$3" ]
}
accepts() { grep -c '^early: accepted$' "$T/backend.log"; }

BE=$(free_port)
"${PEER[@]}" backend "$BE" early >"$T/backend.log" 2>&1 &
track $!
wait_for 10 "the backend" log_has "$T/backend.log" '^listening$' || exit 1
PE=$(free_port)
PF=$(free_port)
WORKERS=1 start_node E "$PE" --backend "127.0.0.1:$BE" --proxy-protocol v2 --handshake-timeout 2 || exit 1
WORKERS=1 start_node F "$PF" --alpn h2,http/1.1 --backend "127.0.0.1:$BE" --backend "alpn:h2=127.0.0.1:$BE" \
    --proxy-protocol v2 --handshake-timeout 2 || exit 1

echo "# ${SECONDS}s: a client that never finishes its handshake"
"${PEER[@]}" stall "$PE" >"$T/stall.out" 2>&1 &
track $!
wait_for 10 "the client to read the server's flight and stall" log_has "$T/stall.out" '^stalled$'
# The client never sends Finished, so a backend connection for it can only be an early one.
check "early_connect: the backend accepts while the client's handshake is unfinished" \
    wait_for 10 "the backend to accept" log_has "$T/backend.log" '^early: accepted$'
check "early_connect: the node gives up on the handshake (--handshake-timeout)" \
    wait_for 15 "the node to close the stalled client" log_has "$T/stall.out" '^closed by the server$'
check "early_connect: the backend connection ends with it, before any byte was sent" \
    wait_for 10 "the backend to see the end" log_has "$T/backend.log" '^early: closed, no byte came$'
check "early_connect: counted as proxy_early_abandoned" \
    wait_for 5 "proxy_early_abandoned" node_stat_ge E proxy_early_abandoned 1

echo "# ${SECONDS}s: a normal client on the same route"
reply=$(curl -sk --http0.9 --max-time 10 "https://127.0.0.1:$PE/")
check "early_connect: the backend's first bytes are the PROXY v2 header with the handshake's facts ($reply)" \
    grep -Eq '^pp2 .*src=127\.0\.0\.1:[0-9]+ .*version=TLSv1\.3' <<<"$reply"
check "early_connect: both counted as proxy_early_connects" \
    wait_for 5 "proxy_early_connects" node_stat_ge E proxy_early_connects 2
check "early_connect: proxy_opened counts only the finished handshake" \
    wait_for 5 "proxy_opened" node_stat_ge E proxy_opened 1
check "early_connect: proxy_opened is not bumped by the abandoned one ($(node_stat E proxy_opened))" \
    [ "$(node_stat E proxy_opened)" = 1 ]

echo "# ${SECONDS}s: an alpn: route competes: the default route waits for the handshake"
before=$(accepts)
"${PEER[@]}" stall "$PF" >"$T/stall2.out" 2>&1 &
track $!
wait_for 10 "the second client to stall" log_has "$T/stall2.out" '^stalled$'
wait_for 15 "node F to close the stalled client" log_has "$T/stall2.out" '^closed by the server$'
check "early_connect: no backend connection for a handshake whose route needs ALPN ($before -> $(accepts) accepts)" \
    [ "$(accepts)" = "$before" ]
reply=$(curl -sk --http0.9 --http1.1 --max-time 10 "https://127.0.0.1:$PF/")
check "early_connect: after the handshake that route still proxies ($reply)" grep -q '^pp2 .*src=127' <<<"$reply"
wait_for 5 "node F's stats to show the proxied connection" node_stat_ge F proxy_opened 1
check "early_connect: node F made no early connect ($(node_stat F proxy_early_connects))" \
    [ "$(node_stat F proxy_early_connects)" = 0 ]

finish
