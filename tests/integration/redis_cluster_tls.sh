#!/usr/bin/env bash
# rediss-cluster://: a Redis Cluster (3 masters + 3 replicas) that speaks TLS only — clients,
# cluster bus and replication (tls-port alone, tls-cluster yes), with a CA the test makes. Two
# nodes given rediss-cluster://h1:p1,h2:p2,h3:p3 and --redis-ca read the slot map over TLS
# (CLUSTER SHARDS names only a tls-port), open a TLS link to every master, each verified by the
# IP address the map gives, and resume each other's sessions at 100 %, sessions landing on all
# three masters. Then every node shows a certificate for a host name alone and announces it
# (cluster-announce-hostname): a third node verifies the masters by that name. A node given
# another CA logs, per seed link, one error line naming --redis-ca and keeps serving full
# handshakes.
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

# Nodes whose certificates name a host, not an IP address: each master announces that name
# (cluster-announce-hostname, the "hostname" of CLUSTER SHARDS) and shows a certificate for it
# alone. A node seeded by name reaches the masters at the IP address the map gives and verifies
# them by the announced name; verified by the IP address it would fail.
(cd "$P" && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out named.key 2>/dev/null &&
    openssl req -new -key named.key -subj /CN=rcnode.test -out named.csr &&
    printf 'subjectAltName=DNS:rcnode.test,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >named.ext &&
    openssl x509 -req -in named.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile named.ext -out named.pem 2>/dev/null) ||
    exit 1
for p in "${RC_PORTS[@]}"; do
    rc_cli -p "$p" CONFIG SET tls-cert-file "$P/named.pem" tls-key-file "$P/named.key" cluster-announce-hostname rcnode.test >/dev/null
done
announced() { local n; n=$(rc_cli -p "${RC_PORTS[0]}" CLUSTER SHARDS | grep -c '^rcnode.test$'); echo "$n nodes announce rcnode.test"; [ "$n" = 6 ]; }
wait_for 20 "every node to announce its hostname" announced || exit 1
PE=$(free_port) AE=$(free_port)
"$SERVER_BIN" --listen "127.0.0.1:$PE" --workers 1 --node E --cluster test --cert "$P/default.pem" --key "$P/default.key" \
    --redis "rediss-cluster://localhost:${RC_PORTS[0]},localhost:${RC_PORTS[1]}" --redis-ca "$P/ca.pem" \
    --lookup-timeout 1000 --store-timeout 2000 --admin "127.0.0.1:$AE" --log-level info >>"$TLSC_TMP/E.log" 2>&1 &
track $!
wait_port "$PE" 15 || exit 1
check "masters_verified_by_the_hostname_the_slot_map_announces" wait_for 30 "E ready" ready "$AE"
check "no_tls_failure_with_hostname_certificates" bash -c '! grep -q "TLS handshake failed" "$1"' _ "$TLSC_TMP/E.log"
re=$(sget "$PE" 1.3 "" "" "$TLSC_TMP/e.sess")
re2=$(sget "$PE" 1.3 "" "$TLSC_TMP/e.sess" "")
check "sessions_resume_through_hostname_verified_links" [ "$(jfield "$re" resumed)/$(jfield "$re2" resumed)" = false/true ]

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
