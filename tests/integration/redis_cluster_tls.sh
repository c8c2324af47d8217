#!/usr/bin/env bash
# rediss-cluster://: a Redis Cluster (3 masters + 3 replicas) that speaks TLS only — clients,
# cluster bus and replication (tls-port alone, tls-cluster yes), with a CA the test makes. Two
# nodes given rediss-cluster://h1:p1,h2:p2,h3:p3 and --redis-ca read the slot map over TLS
# (CLUSTER SHARDS names only a tls-port), open a TLS link to every master, each verified by the
# IP address the map gives, and resume each other's sessions at 100 %, sessions landing on all
# three masters. A node given another CA logs, per seed link, one error line naming --redis-ca
# and keeps serving full handshakes.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
. "$TLSC_ROOT/tests/lib/redis_cluster.sh"
need redis-server redis-cli openssl jq python3 curl timeout
trap cleanup EXIT
tlsc_tmpdir
P=$TLSC_TMP/pki
make_test_pki "$P" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$P/other-ca.key" -out "$P/other-ca.pem" 2>/dev/null || exit 1
export RC_TLS_PKI=$P
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
OUT=$TLSC_TMP/out
mkdir -p "$OUT"

ready() {
    local s
    s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/readyz")
    echo "GET /readyz on $1: $s"
    [ "$s" = 200 ]
}

# start_cnode NAME PORT ADMIN CA: a server node on the TLS cluster (the seeds: the first three
# nodes). Long timeouts, as in redis_cluster.sh: this test is about TLS and routing, not stalls.
start_cnode() {
    "$SERVER_BIN" --listen "127.0.0.1:$2" --workers "${WORKERS:-2}" --node "$1" --cluster test \
        --cert "$P/default.pem" --key "$P/default.key" \
        --redis "rediss-cluster://127.0.0.1:${RC_PORTS[0]},127.0.0.1:${RC_PORTS[1]},127.0.0.1:${RC_PORTS[2]}" --redis-ca "$4" \
        --lookup-timeout 1000 --store-timeout 2000 --admin "127.0.0.1:$3" --log-level info >>"$TLSC_TMP/$1.log" 2>&1 &
    track $!
    wait_port "$2" 15 || { tail -20 "$TLSC_TMP/$1.log" >&2; return 1; }
}

start_redis_cluster || exit 1
echo "TLS cluster up: ports ${RC_PORTS[*]}, masters $(rc_masters | tr '\n' ' ')"
PA=$(free_port) AA=$(free_port) PB=$(free_port) AB=$(free_port)
start_cnode A "$PA" "$AA" "$P/ca.pem" || exit 1
start_cnode B "$PB" "$AB" "$P/ca.pem" || exit 1

check "both_nodes_ready_once_every_worker_reaches_all_three_masters_over_tls" wait_for 30 "both nodes ready" \
    bash -c "$(declare -f ready); ready $AA && ready $AB"
check "the_slot_map_read_over_tls_covers_every_slot" log_has "$TLSC_TMP/A.log" "redis cluster: 3 masters, 16384 of 16384 slots covered"
# every_master_linked_over_tls LOG: each master's link said "connected" under its rediss:// name.
every_master_linked_over_tls() {
    local p
    for p in $(rc_masters); do
        grep -q "redis rediss://127.0.0.1:$p/0: connected" "$1" || { echo "no TLS link to master $p in $1"; return 1; }
    done
}
check "every_master_is_linked_over_tls" every_master_linked_over_tls "$TLSC_TMP/A.log"

for v in 1.2 1.3; do
    rc_bench "cross$v" --connections 150 --concurrency 2 --tls "$v" --new-session-every 3
    check "tls${v}_sessions_resume_cross_node_at_100_percent" rc_all_resumed "cross$v"
done
counts=""
for p in $(rc_masters); do counts="$counts $p=$(rc_sessions "$p")"; done
echo "sessions per master:$counts"
spread_ok() { local p; for p in $(rc_masters); do [ "$(rc_sessions "$p")" -gt 0 ] || return 1; done; }
check "sessions_spread_over_all_three_masters" spread_ok
check "no_link_failed_tls" bash -c '! grep -q "TLS handshake failed" "$1" "$2"' _ "$TLSC_TMP/A.log" "$TLSC_TMP/B.log"

# Another CA: each seed link logs one error line naming --redis-ca; full handshakes all the same.
PC=$(free_port) AC=$(free_port)
WORKERS=1 start_cnode C "$PC" "$AC" "$P/other-ca.pem" || exit 1
ca_errors() { grep -c "error: redis rediss://127.0.0.1:[0-9]*/0: TLS handshake failed: Redis's certificate: .*--redis-ca" "$1"; }
three_ca_errors() { local n; n=$(ca_errors "$1"); echo "$n CA error lines"; [ "$n" = 3 ]; }
check "wrong_ca_is_one_error_line_per_seed_naming_redis_ca" wait_for 15 "the CA errors" three_ca_errors "$TLSC_TMP/C.log"
rc=$(sget "$PC" 1.3 "" "" "")
check "wrong_ca_node_still_serves_full_handshakes" [ "$(jfield "$rc" resumed)/$(jfield "$rc" node)" = false/C ]
check "wrong_ca_never_connected" bash -c '! grep -q ": connected" "$1"' _ "$TLSC_TMP/C.log"
finish
