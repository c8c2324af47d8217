#!/usr/bin/env bash
# rediss-sentinel://: a master, a replica and three sentinels that all speak TLS only (tls-port,
# one CA the test makes), the sentinels behind their own password (requirepass, given with
# --redis-sentinel-pass-file) and the data nodes behind another (--redis-pass-file). Two nodes
# ask the sentinels over TLS, reach the master over TLS, and a session made on one resumes on
# the other; the master is SIGKILLed and the nodes follow the promoted replica, with no
# handshake failing. The local cache's revocation feeds ask the TLS sentinels too and subscribe
# on the TLS master, before and after the failover. A node with the wrong sentinel password, and
# one with another CA, each log one error line that says what to fix (and one for the feed) and
# keep serving full handshakes.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
. "$TLSC_ROOT/tests/lib/sentinel.sh"
need redis-server redis-sentinel redis-cli openssl jq
trap cleanup EXIT
tlsc_tmpdir
P=$TLSC_TMP/pki
make_test_pki "$P" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$P/other-ca.key" -out "$P/other-ca.pem" 2>/dev/null || exit 1
PW='data tls pw'
SPW='sentinel tls pw'
(umask 077 && echo "$PW" >"$TLSC_TMP/redis.pass" && echo "$SPW" >"$TLSC_TMP/sentinel.pass" &&
    echo 'not the sentinel pw' >"$TLSC_TMP/wrong.pass")
# Every Redis and sentinel shows node.pem (server and client: replication and sentinels dial out over TLS).
export SN_TLS_PKI=$P SN_PW=$PW SN_SENTINEL_PW=$SPW

sn_start_deployment || exit 1
M=$SN_MASTER MPID=$SN_MASTER_PID R=$SN_REPLICA S=("${SN_PORTS[@]}")

export REDIS_URL="rediss-sentinel://127.0.0.1:${S[0]},127.0.0.1:${S[1]},127.0.0.1:${S[2]}/mymaster"
TLSFLAGS=(--redis-ca "$P/ca.pem" --redis-pass-file "$TLSC_TMP/redis.pass")
PA=$(free_port)
start_node A "$PA" "${TLSFLAGS[@]}" --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" --admin off || exit 1
PB=$(free_port)
WORKERS=1 start_node B "$PB" "${TLSFLAGS[@]}" --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" --admin off || exit 1
check "node_asks_the_tls_sentinels_and_connects_to_the_master_over_tls" \
    wait_for 20 "both of A's workers connected" bash -c \
    '[ "$(grep -c "redis rediss-sentinel:mymaster/0: connected" "$1")" = 2 ]' _ "$TLSC_TMP/A.log"
check "node_logs_the_master_the_sentinels_named" log_has "$TLSC_TMP/A.log" "names 127.0.0.1:$M as the master"

# One handshake: F counts the ones that got no reply (a failed handshake).
F=$TLSC_TMP/failed
: >"$F"
hs() { sget "$1" 1.3 "" "$2" "$3" || { echo x >>"$F"; return 1; }; }
# a_then_b TAG: a new session on A, resumed on B; succeeds when B resumed it.
a_then_b() {
    local r
    hs "$PA" "" "$TLSC_TMP/s-$1" >/dev/null || return 1
    # While A's store is not ready (the failover), A sends no TLS 1.3 ticket: nothing to offer.
    [ -s "$TLSC_TMP/s-$1" ] || { echo "A sent no ticket (its store was not ready)"; return 1; }
    r=$(hs "$PB" "$TLSC_TMP/s-$1" "") || return 1
    [ "$(jfield "$r" resumed)/$(jfield "$r" node)" = true/B ] || { echo "not resumed on B: $r"; return 1; }
}
check "session_made_on_a_resumes_on_b_through_the_tls_master" wait_for 20 "a session that resumes on B" a_then_b first
sessions_in_master() { [ "$(sn_cli "$M" --scan --pattern 'tlscache:sess:*' | grep -c .)" -ge 1 ]; }
check "sessions_are_in_the_tls_master" sessions_in_master
# The local cache's revocation feed (the master process) asks a TLS sentinel too, with the
# sentinels' password, then subscribes on the TLS master: both nodes' feeds are there.
feeds_on() { local n; n=$(sn_cli "$1" pubsub numsub tlscache:revoked | tail -1); echo "subscribers on $1: $n"; [ "$n" = 2 ]; }
check "both_revocation_feeds_subscribe_on_the_tls_master" wait_for 20 "A's and B's feeds" feeds_on "$M"

kill -KILL "$MPID"
n=0
after_failover() { n=$((n + 1)); a_then_b "post-$n"; }
check "new_sessions_resume_across_nodes_after_the_failover" wait_for 90 "resumption on the promoted replica" after_failover
check "node_follows_the_promoted_replica" log_has "$TLSC_TMP/A.log" "names 127.0.0.1:$R as the master"
check "both_revocation_feeds_subscribe_on_the_promoted_replica" wait_for 30 "A's and B's feeds" feeds_on "$R"
check "no_handshake_failed" [ "$(wc -l <"$F")" = 0 ]
check "no_password_shows_in_the_logs" bash -c '! grep -qE "tls pw" "$1" "$2"' _ "$TLSC_TMP/A.log" "$TLSC_TMP/B.log"

# The wrong sentinel password: one error line naming the flag; full handshakes all the same.
PC=$(free_port)
WORKERS=1 start_node C "$PC" "${TLSFLAGS[@]}" --redis-sentinel-pass-file "$TLSC_TMP/wrong.pass" --admin off || exit 1
check "wrong_sentinel_password_is_one_error_line_naming_the_flag" wait_for 15 "the AUTH error" log_has "$TLSC_TMP/C.log" \
    "error: redis sentinels of mymaster: a sentinel refused AUTH: .*--redis-sentinel-pass-file"
rc=$(sget "$PC" 1.3 "" "" "")
check "wrong_sentinel_password_node_still_serves_full_handshakes" [ "$(jfield "$rc" resumed)/$(jfield "$rc" node)" = false/C ]
check "wrong_sentinel_password_said_once" [ "$(grep -c "redis sentinels of mymaster: a sentinel refused AUTH" "$TLSC_TMP/C.log")" = 1 ]
check "wrong_sentinel_password_feed_says_so_once" [ "$(grep -c "revocation feed .*a sentinel refused AUTH" "$TLSC_TMP/C.log")" = 1 ]
check "wrong_sentinel_password_never_shows" bash -c '! grep -q "not the sentinel pw" "$1"' _ "$TLSC_TMP/C.log"

# Another CA: one error line naming --redis-ca; full handshakes all the same.
PD=$(free_port)
WORKERS=1 start_node D "$PD" --redis-ca "$P/other-ca.pem" --redis-pass-file "$TLSC_TMP/redis.pass" \
    --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" --admin off || exit 1
check "wrong_ca_is_one_error_line_naming_redis_ca" wait_for 15 "the CA error" log_has "$TLSC_TMP/D.log" \
    "error: redis sentinels of mymaster: TLS handshake failed: the sentinel's certificate: .*--redis-ca"
rd=$(sget "$PD" 1.2 "" "" "")
check "wrong_ca_node_still_serves_full_handshakes" [ "$(jfield "$rd" resumed)/$(jfield "$rd" node)" = false/D ]
check "wrong_ca_said_once" [ "$(grep -c "redis sentinels of mymaster: TLS handshake failed" "$TLSC_TMP/D.log")" = 1 ]
check "wrong_ca_feed_is_one_error_line_naming_the_sentinel" wait_for 15 "the feed's CA error" log_has "$TLSC_TMP/D.log" \
    "error: revocation feed tlscache:revoked: TLS handshake failed: the sentinel's certificate: .*--redis-ca"
check "wrong_ca_feed_said_once" [ "$(grep -c "revocation feed .*TLS handshake failed" "$TLSC_TMP/D.log")" = 1 ]
check "wrong_ca_never_connected" bash -c '! grep -q ": connected" "$1"' _ "$TLSC_TMP/D.log"
finish
