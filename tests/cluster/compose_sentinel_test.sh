#!/usr/bin/env bash
# The container cluster on Redis Sentinel (docker-compose.yml + docker-compose.sentinel.yml):
# a Redis master, a replica, three sentinels; the nodes reach Redis through a
# redis-sentinel:// URL with --store-replicas 1. Checks:
#   - everything healthy, the sentinels agree on the master, the replica is attached;
#   - sessions resume through the load balancer on every node;
#   - the master SIGKILLed under load: no failed handshake, the sentinels promote the replica,
#     resumption comes back (the time it took is printed, not asserted), and sessions made
#     before the kill still resume (their stores waited for the replica);
#   - the old master started again rejoins as a replica of the new one;
#   - `down -v` leaves nothing behind.
# Traffic goes only to the test's own containers and the ports it published on 127.0.0.1.
# Env: TLSC_CLUSTER_KEEP=1 leaves the cluster up at the end; TLSC_SKIP_BUILD=1.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/lib/cluster.sh"
set -o pipefail
cd "$TLSC_ROOT" || exit 1

export PROJECT=${TLSC_CLUSTER_PROJECT:-tlscachetest}ha
export CLUSTER_COMPOSE_FILES="docker-compose.yml docker-compose.sentinel.yml"
NODES=(server1 server2 server3)
SENTINELS=(sentinel1 sentinel2 sentinel3)
ALL=(redis redis-replica "${SENTINELS[@]}" cache-daemon "${NODES[@]}" lb)
cluster_prepare

# master_seen SENTINEL: the master's host as that sentinel names it.
master_seen() { dc exec -T "$1" /usr/bin/redis-cli -p 26379 sentinel get-master-addr-by-name tlscache 2>/dev/null | tr -d '\r' | head -n1; }
# sentinels_agree HOST [MIN]: at least MIN sentinels (default all three) name HOST the master
# (a sentinel on a busy host may learn of a failover seconds after the others).
sentinels_agree() {
    local s seen="" n=0 m
    for s in "${SENTINELS[@]}"; do
        m=$(master_seen "$s")
        seen+="$s=$m "
        [ "$m" = "$1" ] && n=$((n + 1))
    done
    echo "masters seen: $seen"
    [ "$n" -ge "${2:-3}" ]
}
# role_of SERVICE: "master" or "slave" as the data node says.
role_of() { dc exec -T "$1" redis-cli role 2>/dev/null | tr -d '\r' | head -n1; }
replica_attached() { local r; r=$(dc exec -T "$1" redis-cli info replication 2>/dev/null | tr -d '\r' | grep -E '^(role|connected_slaves):' | tr '\n' ' '); echo "$1: $r"; [[ $r == *connected_slaves:1* ]]; }

# ---- 1. up from a clean state ----
echo "# 1. up from a clean state; everything healthy (at ${SECONDS}s)"
dc down -v --remove-orphans -t 5 >/dev/null 2>&1
t0=$(date +%s)
if dc up -d >"$TLSC_TMP/up.log" 2>&1 && wait_healthy 150 "${ALL[@]}" && wait_lb node1 UP 20 && wait_lb node2 UP 20 && wait_lb node3 UP 20; then
    pass "sentinel cluster up from clean: ${ALL[*]} healthy ($(($(date +%s) - t0)) s)"
else
    fail "sentinel cluster up from clean: all services healthy"
    tail -n 20 "$TLSC_TMP/up.log" >&2
    dump_logs
    finish
    exit 1
fi
check "the three sentinels name 'redis' the master" wait_for 20 "the sentinels to agree" sentinels_agree redis
check "the replica is attached to the master" wait_for 20 "the replica to attach" replica_attached redis

# ---- 2. resumption through the load balancer, Redis reached through the sentinels ----
echo "# 2. resumption through the load balancer (at ${SECONDS}s)"
if bench ha-before --tls 1.2 --mode id --connections 600 --concurrency 8 &&
    summary=$(bench_check ha-before --min-rate 0.99 --min-nodes 3 --max-errors 0); then
    pass "bench through LB (sentinel URL, --store-replicas 1): $summary"
else
    fail "bench through LB (sentinel URL): ${summary:-no result}"
    dump_logs server1
fi
# Sessions made now, before the master dies: their stores waited for the replica.
for i in 1 2 3 4 5 6; do sget 1.2 id "" "$TLSC_TMP/pre.$i.sess" >/dev/null; done
npre=$(ls "$TLSC_TMP"/pre.*.sess 2>/dev/null | wc -l)
check "six sessions made before the kill ($npre)" [ "$npre" -eq 6 ]

# ---- 3. the master killed under load ----
echo "# 3. the master SIGKILLed under load (at ${SECONDS}s)"
( bench ha-kill --tls 1.2 --mode id --duration 15 --concurrency 4 ) &
bpid=$!
track "$bpid"
# load_under_way: the bench's resumptions show in the nodes' stats (read on the replica).
stats_replica() {
    dc exec -T redis-replica sh -c '
        t=0
        for k in $(redis-cli --scan --pattern "tlscache:stats:*"); do
            v=$(redis-cli hget "$k" handshakes_resumed); t=$((t + ${v:-0}))
        done
        echo $t' 2>/dev/null | tr -d '\r'
}
before=$(stats_replica)
load_under_way() { local n; n=$(stats_replica); echo "handshakes_resumed $before -> $n"; [ "${n:-0}" -ge $((before + 100)) ]; }
wait_for 15 "the bench to be under way" load_under_way
tkill=$(date +%s.%N)
docker kill -s KILL "$(cid redis)" >/dev/null 2>&1
promoted() { local r; r=$(role_of redis-replica); echo "redis-replica: role '$r'"; [ "$r" = master ] && sentinels_agree redis-replica 2; }
check "the sentinels promote redis-replica" wait_for 40 "the failover" promoted
tpromoted=$(date +%s.%N)
# Sessions made before the kill resume on the promoted replica (a TLS 1.2 session stays valid
# when offered, so all six are offered again until they resume: the nodes may still be
# switching over). Checked at once, well inside the 300 s session timeout even on a slow host.
pre_resumed() {
    local i out=""
    for i in 1 2 3 4 5 6; do out+="$(sget 1.2 id "$TLSC_TMP/pre.$i.sess" "") "; done
    echo "$out"
    [ "$(grep -o ' yes' <<<"$out" | wc -l)" -eq 6 ]
}
check "sessions made before the kill resume after the failover" wait_for 60 "the pre-kill sessions to resume" pre_resumed
wait "$bpid"
if summary=$(bench_check ha-kill --max-errors 0); then
    pass "master killed under load: every handshake completed: $summary"
else
    fail "master killed under load: $summary"
    dump_logs server1 sentinel1
fi
# Resumption back: bounded retries of a short bench.
ok=0
for i in 1 2 3 4 5 6 7 8; do
    bench ha-back-$i --tls 1.2 --mode id --connections 200 --concurrency 4 &&
        summary=$(bench_check ha-back-$i --min-rate 0.99 --max-errors 0) && { ok=1; break; }
done
tback=$(date +%s.%N)
check "resumption back on the promoted replica: $summary" [ "$ok" = 1 ]
echo "# failover: promoted $(printf '%.1f' "$(echo "$tpromoted - $tkill" | bc)") s after the kill; resumption at >= 99 % again $(printf '%.1f' "$(echo "$tback - $tkill" | bc)") s after it"

# ---- 4. the old master comes back as a replica ----
echo "# 4. the old master started again (at ${SECONDS}s)"
dc start redis >/dev/null 2>&1
is_replica() { local r; r=$(role_of redis); echo "redis: role '$r'"; [ "$r" = slave ]; }
check "the old master rejoins as a replica" wait_for 40 "redis to become a replica" is_replica
check "the new master has its replica" wait_for 40 "redis to attach to redis-replica" replica_attached redis-replica
if bench ha-after --tls 1.2 --mode id --connections 300 --concurrency 8 &&
    summary=$(bench_check ha-after --min-rate 0.99 --min-nodes 3 --max-errors 0); then
    pass "after the old master rejoined: $summary"
else
    fail "after the old master rejoined: ${summary:-no result}"
fi

# ---- 5. down -v leaves nothing behind ----
echo "# 5. down -v leaves nothing behind (at ${SECONDS}s)"
if [ -z "${TLSC_CLUSTER_KEEP:-}" ]; then
    dc down -v --remove-orphans -t 10 >/dev/null 2>&1
    left=$(
        docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
        docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
        docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
    )
    check "compose down -v: no container, network or volume left ($left)" [ -z "$left" ]
fi

finish
