#!/usr/bin/env bash
# redis-sentinel://: a master, a replica and three sentinels (Debian's redis-sentinel) on loopback
# ports, the data nodes behind a password (--redis-pass-file), the sentinels behind their own
# (requirepass; --redis-sentinel-pass-file on A, TLSCACHE_REDIS_SENTINEL_PASS on B). A node asks the sentinels for the
# master and resumes sessions; the master is SIGKILLed, the sentinels promote the replica, the
# node follows (+switch-master, or asking again) and new sessions resume again, while sessions
# made before the kill still resume (--store-replicas 1: each store waited for the replica) and
# no handshake ever fails (fail-open). Then the master is demoted by hand (REPLICAOF an outside
# Redis): the node sees READONLY, goes back to the sentinels, and resumes again once the master
# is a master again. Node A runs without the local cache (every resumption comes from Redis);
# node B keeps it, and its revocation feed subscribes on the master the sentinels name, before
# and after the failover.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
. "$TLSC_ROOT/tests/lib/sentinel.sh"
need redis-server redis-sentinel redis-cli openssl jq
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
SN_PW='sentinel-test-pw'
SN_SENTINEL_PW='the sentinels own pw'
(umask 077 && echo "$SN_PW" >"$TLSC_TMP/redis.pass" && echo "$SN_SENTINEL_PW" >"$TLSC_TMP/sentinel.pass")

sn_start_deployment || exit 1
M=$SN_MASTER MPID=$SN_MASTER_PID R=$SN_REPLICA S=("${SN_PORTS[@]}")

export REDIS_URL="redis-sentinel://127.0.0.1:${S[0]},127.0.0.1:${S[1]},127.0.0.1:${S[2]}/mymaster"
PA=$(free_port)
AA=$(free_port)
start_node A "$PA" --redis-pass-file "$TLSC_TMP/redis.pass" --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" --store-replicas 1 --admin "127.0.0.1:$AA" --local-cache 0 || exit 1
PB=$(free_port)
# B's sentinel password comes from the environment; its revocation feed asks a sentinel with it too.
TLSCACHE_REDIS_SENTINEL_PASS=$SN_SENTINEL_PW WORKERS=1 start_node B "$PB" --redis-pass-file "$TLSC_TMP/redis.pass" --admin off || exit 1
# feed_on PORT: node B's revocation feed is subscribed on that data node.
feed_on() { local n; n=$(sn_cli "$1" PUBSUB NUMSUB tlscache:revoked | tail -1); echo "subscribers on $1: $n"; [ "$n" = 1 ]; }
check "revocation_feed_subscribes_on_the_master_the_sentinels_name" wait_for 20 "B's feed on the master" feed_on "$M"
check "node_asks_the_sentinels_and_connects_to_the_master" \
    wait_for 20 "both workers' two links connected" bash -c \
    '[ "$(grep -c "redis sentinel:mymaster/0: connected" "$1")/$(grep -c "redis sentinel:mymaster/0 (stores+WAIT): connected" "$1")" = 2/2 ]' \
    _ "$TLSC_TMP/A.log"
check "node_logs_the_master_the_sentinels_named" log_has "$TLSC_TMP/A.log" "names 127.0.0.1:$M as the master"

# One handshake: F counts the ones that got no reply (a failed handshake).
F=$TLSC_TMP/failed
: >"$F"
hs() { sget "$PA" 1.2 "" "$1" "$2" || { echo x >>"$F"; return 1; }; }
# new_then_resume TAG: a new session, then a resumption of it; succeeds when it resumed.
new_then_resume() {
    local r
    hs "" "$TLSC_TMP/s-$1" >/dev/null || return 1
    r=$(hs "$TLSC_TMP/s-$1" "") || return 1
    [ "$(jfield "$r" resumed)" = true ] || { echo "not resumed: $r"; return 1; }
}
check "session_resumes_through_the_sentinel_master" wait_for 20 "a session that resumes" new_then_resume first

# Sessions made before the kill; each store waited for the replica (WAIT 1).
for i in 1 2 3 4 5; do hs "" "$TLSC_TMP/pre-$i" >/dev/null; done
replica_holds() { local n; n=$(sn_cli "$R" DBSIZE); echo "the replica holds $n keys"; [ "${n:-0}" -ge 6 ]; }
check "the_replica_holds_the_sessions" wait_for 10 "the sessions on the replica" replica_holds

kill -KILL "$MPID"
n=0
after_failover() { n=$((n + 1)); new_then_resume "post-$n"; }
check "new_sessions_resume_again_after_the_failover" wait_for 90 "resumption on the promoted replica" after_failover
check "node_follows_the_promoted_replica" log_has "$TLSC_TMP/A.log" "names 127.0.0.1:$R as the master"
check "revocation_feed_follows_the_promoted_replica" wait_for 20 "B's feed on the new master" feed_on "$R"
pre_resumed() {
    local i r ok=0
    for i in 1 2 3 4 5; do
        r=$(hs "$TLSC_TMP/pre-$i" "") && [ "$(jfield "$r" resumed)" = true ] && ok=$((ok + 1))
    done
    echo "$ok of 5 pre-kill sessions resumed"
    [ "$ok" = 5 ]
}
check "sessions_made_before_the_kill_still_resume" pre_resumed

# The promoted replica has no replica of its own: WAIT comes back short, and the stores that
# follow skip WAIT for a second instead of each waiting for it (and resume at once).
waits() { curl -s "http://127.0.0.1:$AA/metrics" | awk -v o="outcome=\"$1\"" 'index($0, "tlscache_store_waits_total{") == 1 && index($0, o) { s += $2 } END { print s + 0 }'; }
k=0
skipping() { k=$((k + 1)); new_then_resume "alone-$k" || return 1; echo "short=$(waits short) skipped=$(waits skipped)"; [ "$(waits short)" -ge 1 ] && [ "$(waits skipped)" -ge 1 ]; }
check "without_a_replica_stores_skip_WAIT_after_a_short_one" wait_for 30 "short and skipped WAITs" skipping
check "skipping_WAIT_is_logged_once" log_has "$TLSC_TMP/A.log" "stored without waiting for replicas"

# Demote the master by hand: it replicates an outside Redis, so a store gets READONLY.
X=$(free_port)
sn_data_node "$X" || exit 1
sn_cli "$R" REPLICAOF 127.0.0.1 "$X" >/dev/null
m=0
store_until_readonly() {
    m=$((m + 1))
    hs "" "" >/dev/null
    log_has "$TLSC_TMP/A.log" "answered READONLY|ROLE says slave"
}
check "node_notices_the_demoted_master" wait_for 30 "READONLY or ROLE seen" store_until_readonly
sn_cli "$R" REPLICAOF NO ONE >/dev/null
check "new_sessions_resume_again_after_the_demotion" wait_for 90 "resumption again" after_failover
check "no_handshake_failed" [ "$(wc -l <"$F")" = 0 ]

# --store-replicas outcomes are counted in /metrics: the stores before the kill had their replica.
acked() {
    local v
    v=$(curl -s "http://127.0.0.1:$AA/metrics" | awk '/^tlscache_store_waits_total\{.*outcome="acked"/ {s += $2} END {print s + 0}')
    echo "acked=$v"
    [ "$v" -ge 6 ]
}
check "wait_outcomes_counted_in_metrics" acked

finish
