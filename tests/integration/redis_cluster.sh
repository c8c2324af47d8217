#!/usr/bin/env bash
# tlscache on a real Redis Cluster (3 masters + 3 replicas, redis-cli --cluster create on
# loopback): two nodes with --redis redis-cluster://... resume each other's sessions at 100 %,
# sessions land on all three masters, a slot range resharded under load (MOVED / ASK followed,
# counted) keeps resumption at 100 %, a killed master's replica takes over with 0 failed
# handshakes (the recovery time is printed, not asserted), /readyz follows every master, and
# the README's redis-cli -c recipes work.
#
# FIGURE lines are what bench/cluster_faults.sh collects (RC_LOAD_SECS makes the loads longer).
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
. "$TLSC_ROOT/tests/lib/redis_cluster.sh"
need redis-server redis-cli openssl jq python3 curl timeout
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
PROM="python3 $TLSC_ROOT/tests/lib/promcheck.py"
OUT=$TLSC_TMP/out
LOAD_SECS=${RC_LOAD_SECS:-4}
mkdir -p "$OUT"

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
metric() { curl -s --max-time 5 "http://127.0.0.1:$1/metrics" >"$OUT/m" && $PROM value "$OUT/m" "${@:2}"; }
status_is() {
    local s
    s=$(curl -s -o "$OUT/body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1$2")
    echo "GET $2 on $1: $s $(head -c 200 "$OUT/body")"
    [ "$s" = "$3" ]
}
both_ready() { status_is "$AA" /readyz 200 && status_is "$AB" /readyz 200; }

# start_cnode NAME PORT ADMIN: a server node on the cluster (the seeds: the first three nodes).
# Timeouts are long (1 s / 2 s): this test is about where requests go, and six Redis nodes, a
# reshard and two sanitized nodes on a shared box stall now and then for longer than the 200 ms
# GENEROUS_TIMEOUTS give; a stall is a full handshake, which is right, but not what is tested.
start_cnode() {
    "$SERVER_BIN" --listen "127.0.0.1:$2" --workers 2 --node "$1" --cluster test \
        --cert "$TLSC_TMP/pki/default.pem" --key "$TLSC_TMP/pki/default.key" \
        --redis "redis-cluster://127.0.0.1:${RC_PORTS[0]},127.0.0.1:${RC_PORTS[1]},127.0.0.1:${RC_PORTS[2]}" \
        --lookup-timeout 1000 --store-timeout 2000 --admin "127.0.0.1:$3" --log-level info >>"$TLSC_TMP/$1.log" 2>&1 &
    track $!
    printf -v "NODE_PID_$1" '%s' $!
    wait_port "$2" 15 || { tail -20 "$TLSC_TMP/$1.log" >&2; return 1; }
}

T0=$(now_ms)
start_redis_cluster || exit 1
echo "cluster up in $(($(now_ms) - T0)) ms: ports ${RC_PORTS[*]}, masters $(rc_masters | tr '\n' ' ')"
PA=$(free_port) AA=$(free_port) PB=$(free_port) AB=$(free_port)
start_cnode A "$PA" "$AA" || exit 1
start_cnode B "$PB" "$AB" || exit 1

# --- routing: every master reached, cross-node resumption at 100 % ---------------------------------
check "readyz_200_once_every_worker_reaches_all_three_masters" wait_for 20 "both nodes ready" both_ready
check "every_worker_knows_three_masters" [ "$(metric "$AA" tlscache_redis_cluster_masters worker=all state=up)" = 6 ]
for v in 1.2 1.3; do
    rc_bench "cross$v" --connections 150 --concurrency 2 --tls "$v" --new-session-every 3
    check "tls${v}_sessions_resume_cross_node_at_100_percent" rc_all_resumed "cross$v"
done
counts=""
total=0
for p in $(rc_masters); do
    n=$(rc_sessions "$p")
    counts="$counts $p=$n"
    total=$((total + n))
done
echo "FIGURE sessions per master:$counts (total $total)"
spread_ok() { local p; for p in $(rc_masters); do [ "$(rc_sessions "$p")" -gt 0 ] || return 1; done; }
check "sessions_spread_over_all_three_masters" spread_ok

# --- the README's redis-cli recipes (-c follows MOVED) ----------------------------------------------
M=($(rc_masters))
key=$(redis-cli -p "${M[0]}" --scan --pattern 'tlscache:sess:*' | head -1)
# Asked on the two other masters, -c follows the MOVED to the one that holds the key.
cli_c_reads() {
    local proto ttl
    proto=$(redis-cli -c -p "${M[1]}" hget "$key" proto)
    ttl=$(redis-cli -c -p "${M[2]}" ttl "$key")
    echo "key $key: proto '$proto' ttl '$ttl'"
    [ -n "$key" ] && [ -n "$proto" ] && [ "$ttl" -gt 0 ]
}
check "redis_cli_c_reads_a_session_through_the_other_masters" cli_c_reads
check "redis_cli_cluster_call_dbsize_answers_on_every_node" \
    [ "$(redis-cli --cluster call "127.0.0.1:${M[0]}" dbsize 2>/dev/null | grep -c '^127.0.0.1:')" = 6 ]
scan_all=$(for m in $(redis-cli -p "${M[0]}" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ {sub(/@.*/, "", $2); print $2}'); do
    redis-cli -h "${m%:*}" -p "${m##*:}" --scan --pattern 'tlscache:sess:*'
done | wc -l)
check "readme_scan_every_master_recipe_finds_every_session" [ "$scan_all" = "$total" ]

# --- reshard under load: MOVED / ASK followed, resumption stays at 100 % -----------------------------
from=$(rc_id "${M[0]}") to=$(rc_id "${M[1]}")
# rc_slots PORT: how many slots the node at PORT owns, from CLUSTER NODES.
rc_slots() {
    redis-cli -p "${M[0]}" cluster nodes | tr -d '\r' | awk -v p=":$1@" 'index($2, p) {
        for (i = 9; i <= NF; i++) if ($i !~ /^\[/) { n = split($i, r, "-"); c += (n == 2 ? r[2] - r[1] + 1 : 1) } }
        END { print c + 0 }'
}
slots_before=$(rc_slots "${M[1]}")
moved0=$(metric "$AA" tlscache_redis_cluster_redirects_total worker=all)
timeout 120 redis-cli --cluster reshard "127.0.0.1:${M[0]}" --cluster-from "$from" --cluster-to "$to" --cluster-slots 1000 \
    --cluster-yes --cluster-pipeline 5 >"$OUT/reshard.log" 2>&1 &
RESHARD=$!
track "$RESHARD"
runs=0 bad=0
for i in 1 2 3 4 5 6 7 8; do
    rc_bench "reshard$i" --duration "$LOAD_SECS" --concurrency 4 --tls 1.3 --new-session-every 4
    rc_all_resumed "reshard$i" >>"$OUT/reshard.runs" || bad=$((bad + 1))
    runs=$((runs + 1))
    kill -0 "$RESHARD" 2>/dev/null || break
done
wait "$RESHARD"
rc=$?
check "reshard_of_1000_slots_completed" [ "$rc" = 0 ]
rc_bench "after_reshard" --connections 100 --concurrency 2 --tls 1.3 --new-session-every 4
check "resumption_stays_100_percent_during_and_after_the_reshard" [ "$bad/$(rc_all_resumed after_reshard >/dev/null && echo ok)" = 0/ok ]
cat "$OUT/reshard.runs"
# Why a handshake did not resume, if one did not: the nodes' lookup and store outcomes.
for port in "$AA" "$AB"; do
    curl -s --max-time 5 "http://127.0.0.1:$port/metrics" | grep -E '^tlscache_(lookups|stores)_total\{worker="all"' | grep -v ' 0$' | tr '\n' ' '
    echo
done
moved=$(metric "$AA" tlscache_redis_cluster_redirects_total worker=all kind=moved)
ask=$(metric "$AA" tlscache_redis_cluster_redirects_total worker=all kind=ask)
movedb=$(metric "$AB" tlscache_redis_cluster_redirects_total worker=all kind=moved)
askb=$(metric "$AB" tlscache_redis_cluster_redirects_total worker=all kind=ask)
echo "FIGURE reshard: $runs bench runs during it, $bad with a miss or error; redirects followed: node A moved=$moved ask=$ask, node B moved=$movedb ask=$askb"
check "redirects_were_followed_during_the_reshard" [ $((moved + ask + movedb + askb - moved0)) -gt 0 ]
check "slot_map_reread_after_the_reshard" [ "$(metric "$AA" tlscache_redis_cluster_map_refreshes_total worker=all)" -gt 2 ]
check "1000_slots_moved_to_the_second_master" [ "$(rc_slots "${M[1]}")" = $((slots_before + 1000)) ]

# --- ASK: 2000 slots held half-migrated (MIGRATING on the source, IMPORTING on the target) while
# sessions are made and resumed: a key new there gets ASK from the source, and ASKING + the request
# (a whole MULTI ... EXEC, or the take script) on the target; then the move is completed.
# rc_big_range PORT: "first last" of the largest slot range the node at PORT owns.
rc_big_range() {
    redis-cli -p "${M[0]}" cluster nodes | tr -d '\r' | awk -v p=":$1@" 'index($2, p) {
        for (i = 9; i <= NF; i++) if ($i !~ /^\[/ && split($i, r, "-") == 2 && r[2] - r[1] > best) { best = r[2] - r[1]; out = r[1] " " r[2] } }
        END { print out }'
}
asks() { echo $(($(metric "$AA" tlscache_redis_cluster_redirects_total worker=all kind=ask) + $(metric "$AB" tlscache_redis_cluster_redirects_total worker=all kind=ask))); }
asks_above() { local n; n=$(asks); echo "ASK redirects followed: $n"; [ "$n" -gt "$1" ]; }
read -r first last <<<"$(rc_big_range "${M[0]}")"
echo "half-migrating slots $first..$((first + 1999)) of ${M[0]}'s $first-$last to ${M[1]}"
ask0=$(asks)
check "2000_slots_opened_for_migration" python3 "$TLSC_ROOT/tests/lib/rc_migrate.py" open "${M[0]}" "${M[1]}" "$first" 2000
rc_bench "ask" --connections 160 --concurrency 2 --tls 1.3 --new-session-every 2
check "resumption_is_100_percent_while_slots_are_half_migrated" rc_all_resumed ask
check "ask_redirects_were_followed" wait_for 5 "ASK counted" asks_above "$ask0"
check "the_half_migrated_slots_moved_and_closed" python3 "$TLSC_ROOT/tests/lib/rc_migrate.py" close "${M[0]}" "${M[1]}" "$first" 2000 "${M[2]}"
echo "FIGURE ask: 2000 slots half-migrated: $(rc_json ask .resumption.resumed) of $(rc_json ask .resumption.offered) offered sessions resumed; ASK redirects followed: $(($(asks) - ask0))"

# --- a master killed: its replica takes over, 0 failed handshakes ----------------------------------
victim=${M[2]}
pid_var=RC_PID_$victim
T0=$(now_ms)
kill -KILL "${!pid_var}"
rc_bench "failover" --duration $((LOAD_SECS + 2)) --concurrency 4 --tls 1.2 --new-session-every 4 &
FB=$!
# degraded_seen: a node's /readyz is 503 and names the missing master (its gauges are at most
# a second old, so a poll right after the kill may still see it ready: wait for the 503 first,
# then for both nodes ready again).
degraded_seen() {
    local port
    for port in "$AA" "$AB"; do
        status_is "$port" /readyz 503 >/dev/null &&
            grep -o 'Redis Cluster: [0-9]* of [0-9]* masters answer' "$OUT/body" >"$OUT/reason" && return 0
    done
    echo "both nodes still ready"
    return 1
}
: >"$OUT/reason"
ready_ms=""
wait_for 15 "a node to say a master is missing" degraded_seen
if wait_for 30 "both nodes ready after the failover" both_ready; then ready_ms=$(($(now_ms) - T0)); fi
reason=$(head -1 "$OUT/reason")
wait "$FB"
check "no_failed_handshake_while_a_master_fails_over" [ "$(rc_json failover '.errors.total')/$(rc_json failover '.handshakes.full + .handshakes.resumed > 0')" = 0/true ]
echo "readyz while degraded: '${reason:-none seen}'"
check "readyz_503_says_a_master_is_missing_while_degraded" [ -n "$reason" ]
check "readyz_200_again_after_the_promotion" [ -n "$ready_ms" ]
check "a_replica_was_promoted" wait_for 20 "three masters again" bash -c "[ \$(redis-cli -p ${M[0]} cluster nodes | awk '\$3 ~ /master/ && \$3 !~ /fail/ && NF >= 9' | wc -l) = 3 ]"
rc_bench "after_failover" --connections 120 --concurrency 2 --tls 1.2 --new-session-every 3
check "sessions_resume_cross_node_at_100_percent_after_the_failover" rc_all_resumed after_failover
echo "FIGURE failover: master :$victim killed; both nodes ready again after ${ready_ms:-never} ms; during it $(rc_json failover '.handshakes.full') full + $(rc_json failover '.handshakes.resumed') resumed handshakes, $(rc_json failover '.errors.total') failed"
finish
