#!/usr/bin/env bash
# The container cluster, for real: docker-compose.yml brought up from a clean state (Redis, the
# key daemon, three server nodes, HAProxy, the backend), then
#   - every service healthy;
#   - proxy mode: curl through HAProxy (send-proxy-v2) reaches the backend through a node
#     (--accept-proxy, --proxy-protocol v2); the backend names the client address HAProxy saw
#     (not HAProxy's, not a node's); the nodes count proxied connections, no bad PROXY header;
#   - tlscache-bench through the load balancer, TLS 1.2 and 1.3, session IDs / stateful tickets
#     and stateless tickets: >= 99 % of offered sessions resumed, resumptions on >= 3 nodes;
#   - redis-cli in the redis container lists sessions with readable metadata, and no value holds
#     a master secret in clear;
#   - the nodes' local caches serve hits (their revocation feed is subscribed), and a session
#     revoked with tlscache-ctl resumes on no node afterwards;
#   - a node stopped: no failed handshake once HAProxy noticed; started again: it resumes
#     sessions made while it was down;
#   - Redis restarted under load: every handshake completes, resumption comes back;
#   - the key daemon restarted: tickets issued before still resume;
#   - `down -v` leaves no container, network or volume.
# Traffic goes only to the test's own containers (inside its compose network) and to the ports
# it publishes on 127.0.0.1. Images are built once (deploy/build-images.sh, cached).
# Env: TLSC_CLUSTER_KEEP=1 leaves the cluster up at the end (for a look); TLSC_SKIP_BUILD=1;
# on a Docker host shared with other runs, TLSC_CLUSTER_PROJECT=NAME and TLSCACHE_IMAGE_TAG=NAME
# keep this run's containers and images apart from theirs.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/lib/cluster.sh"
set -o pipefail
cd "$TLSC_ROOT" || exit 1

export PROJECT=${TLSC_CLUSTER_PROJECT:-tlscachetest}
NODES=(server1 server2 server3)
ALL=(redis cache-daemon backend "${NODES[@]}" lb)
cluster_prepare

# ---- 1. up from a clean state; everything healthy ----
echo "# 1. up from a clean state; everything healthy (at ${SECONDS}s)"
dc down -v --remove-orphans -t 5 >/dev/null 2>&1
t0=$(date +%s)
if dc up -d >"$TLSC_TMP/up.log" 2>&1 && wait_healthy 120 "${ALL[@]}" && wait_lb node1 UP 20 && wait_lb node2 UP 20 && wait_lb node3 UP 20; then
    pass "compose up from clean: ${ALL[*]} healthy, HAProxy sees 3 nodes UP ($(($(date +%s) - t0)) s)"
else
    fail "compose up from clean: all services healthy"
    tail -n 20 "$TLSC_TMP/up.log" >&2
    dump_logs
    finish
    exit 1
fi

# Image facts: non-root, no secret baked in.
IMG=tlscache:${TLSCACHE_IMAGE_TAG:-latest}
user=$(docker inspect -f '{{.Config.User}}' "$IMG")
if [ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] &&
    ! docker run --rm --entrypoint sh "$IMG" -c 'grep -rqs -F "$1" /usr /etc' sh "$(cat "$TLSCACHE_SECRETS_DIR/cluster.psk")"; then
    pass "tlscache image runs as '$user', holds no cluster secret"
else
    fail "tlscache image non-root ('$user') and free of secrets"
fi

# ---- 2. resumption through the load balancer ----
echo "# 2. resumption through the load balancer (at ${SECONDS}s)"
# The compose default is --resumption both: TLS 1.2 offers session IDs (no ticket extension)
# or tickets as the client chooses; TLS 1.3 issues stateless tickets. TLS 1.3 stateful tickets
# (Redis) are tested below with the nodes switched to --resumption cache.
for case in "1.2 id" "1.2 ticket" "1.3 ticket"; do
    set -- $case
    name="bench-tls$1-$2"
    if bench "$name" --tls "$1" --mode "$2" --connections 600 --concurrency 8 &&
        summary=$(bench_check "$name" --min-rate 0.99 --min-nodes 3 --max-errors 0 --min-replies 600); then
        pass "bench through LB: $summary"
    else
        fail "bench through LB, TLS $1 $2: ${summary:-no result}"
    fi
    summary=""
done

# The same with a plain client, one connection at a time, each offering the session the last
# one got: the backend's JSON reply names the node that proxied the connection and whether its
# handshake resumed; sessions made on one node resume on the others, through the proxy.
chain_check() { # chain_check TLS MODE
    local out nodes resumed
    out=$(chain "$1" "$2" 10)
    resumed=$(awk '$2 == "yes"' <<<"$out" | wc -l)
    nodes=$(awk '$2 == "yes" { print $1 }' <<<"$out" | sort -u | wc -l)
    if [ "$resumed" -ge 9 ] && [ "$nodes" -ge 3 ]; then
        pass "openssl s_client TLS $1 $2 chain: $resumed/9 resumed on $nodes nodes"
    else
        fail "openssl s_client TLS $1 $2 chain: $resumed/9 resumed on $nodes nodes: $(tr '\n' ' ' <<<"$out")"
    fi
}
chain_check 1.2 id
chain_check 1.2 ticket
chain_check 1.3 ticket

# ---- 3. what redis-cli shows ----
echo "# 3. what redis-cli shows (at ${SECONDS}s)"
keys=$(dc exec -T redis redis-cli --scan --pattern 'tlscache:sess:*' 2>/dev/null | tr -d '\r')
nkeys=$(grep -c . <<<"$keys")
# The session looked at is one made now: on a slow host the sessions of section 2 may be near
# the end of their 300 s life by the time this runs.
sget 1.2 id "" "$TLSC_TMP/listed.sess" >/dev/null
one="tlscache:sess:$(openssl sess_id -in "$TLSC_TMP/listed.sess" -noout -text 2>/dev/null | awk '/Session-ID:/{print tolower($2)}')"
# The metadata fields by name: the sealed `der` value is binary (it may hold newlines), so it is
# only checked for presence, never split into lines.
fields=(proto cipher sni alpn created node worker)
mapfile -t values < <(dc exec -T redis redis-cli hmget "$one" "${fields[@]}" 2>/dev/null | tr -d '\r')
names=" $(dc exec -T redis redis-cli hkeys "$one" 2>/dev/null | tr -d '\r' | tr '\n' ' ')"
meta=""
missing=""
for i in "${!fields[@]}"; do meta+="${fields[$i]}=${values[$i]:-} "; done
for f in der "${fields[@]}"; do [[ $names == *" $f "* ]] || missing+=" $f"; done
ttl=$(dc exec -T redis redis-cli ttl "$one" 2>/dev/null | tr -d '\r')
if [ "$nkeys" -gt 0 ] && [ -z "$missing" ] && [ "${ttl:-0}" -gt 0 ]; then
    pass "redis-cli lists $nkeys sessions; $one: $meta ttl=$ttl"
else
    fail "redis-cli session listing: $nkeys keys, '$one': '$meta' (missing:$missing) ttl=$ttl"
fi
nstats=$(dc exec -T redis redis-cli --scan --pattern 'tlscache:stats:*' 2>/dev/null | tr -d '\r' | grep -c .)
if [ "$nstats" -ge 3 ]; then pass "per-worker stats hashes in Redis: $nstats"; else fail "per-worker stats hashes: $nstats"; fi

# The ACL: the workers' user cannot read outside its prefix nor run admin commands; the
# default user is off.
# (the test's throwaway password goes in through the environment of redis-cli)
wpass=$(cat "$TLSCACHE_SECRETS_DIR/redis-tlscache.password")
acl=$(printf '%s\n' "$(dc exec -T -e REDISCLI_AUTH="$wpass" redis /usr/bin/redis-cli --user tlscache config get maxmemory 2>&1)" \
    "$(dc exec -T -e REDISCLI_AUTH="$wpass" redis /usr/bin/redis-cli --user tlscache set other:x 1 2>&1)" \
    "$(dc exec -T redis /usr/bin/redis-cli ping 2>&1)" | tr -d '\r')
if [ "$(grep -c 'NOPERM' <<<"$acl")" -eq 2 ] && grep -q NOAUTH <<<"$acl"; then
    pass "Redis ACL: workers' user limited (no CONFIG, no keys outside tlscache:*), default user off"
else
    fail "Redis ACL limits: $(tr '\n' '|' <<<"$acl")"
fi

# No master secret in clear: TLS 1.2 sessions by ID made by openssl s_client (the chain above
# and one more now) are stored in Redis under their session ID; openssl sess_id tells their
# master keys. None may appear in any stored value, and no der value may hold a plain
# SSL_SESSION (tests/cluster/lib/sealed_check.py).
for i in 1 2 3; do sget 1.2 id "" "$TLSC_TMP/mk.$i.sess" >/dev/null; done
# sessions_stored SESSFILE...: every session's key is in Redis (a new session's last flight
# waits for its store, so this holds at once unless a store timed out).
sessions_stored() {
    local f keys=() n
    for f in "$@"; do keys+=("tlscache:sess:$(openssl sess_id -in "$f" -noout -text | awk '/Session-ID:/{print tolower($2)}')"); done
    n=$(dc exec -T redis redis-cli exists "${keys[@]}" 2>&1 | tr -d '\r')
    echo "$n of ${#keys[@]} sessions in Redis"
    [ "$n" = "${#keys[@]}" ]
}
wait_for 10 "the 3 new sessions in Redis" sessions_stored "$TLSC_TMP"/mk.*.sess
docker exec "$(cid redis)" sh -c '
    redis-cli --scan --pattern "tlscache:sess:*" | head -n 5000 >/tmp/keys
    sed "s/^/HGET /; s/\$/ der/" /tmp/keys | redis-cli --no-raw >/tmp/values
    paste -d " " /tmp/keys /tmp/values; rm -f /tmp/keys /tmp/values' >"$TLSC_TMP/der.dump" 2>/dev/null
if summary=$(python3 "$CLUSTER_LIB/sealed_check.py" "$TLSC_TMP/der.dump" "$TLSC_TMP"/mk.*.sess "$TLSC_TMP"/chain.1.2.id.*.sess); then
    pass "no master secret in Redis: $summary"
else
    fail "no master secret in Redis: $summary"
fi

# ---- 3b. proxy mode: LB -> node -> backend, the client's address passed along ----
echo "# 3b. proxy mode: LB -> node -> backend (at ${SECONDS}s)"
before_px=$(stats_sum proxy_opened)
reply=$(curl -sk --max-time 10 "https://127.0.0.1:$TLSCACHE_PORT/")
client=$(python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(j["client"] if j.get("command") == "PROXY" and j.get("backend") else "")' "$reply" 2>/dev/null)
via=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("via", ""))' "$reply" 2>/dev/null)
if [ -n "$client" ] && [[ $via == node[123] ]]; then
    pass "curl -k https://127.0.0.1:$TLSCACHE_PORT/ reaches the backend through $via: $reply"
else
    fail "curl through LB -> node -> backend: '$reply'"
fi
# The client address HAProxy saw for that connection is in its log (option tcplog:
# "IP:PORT [date] tls nodes/NODE ..."), and is neither HAProxy's nor a node's address.
lb_saw() { dc logs --no-color lb 2>/dev/null | grep -F " ${client} [" | grep -F "nodes/$via" | tail -n1 | grep . || { echo "no HAProxy log line for $client via $via"; false; }; }
ips=$(for s in lb "${NODES[@]}"; do docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$(cid "$s")"; done)
if [ -n "$client" ] && wait_for 10 "HAProxy to log the curl's connection" lb_saw >/dev/null &&
    ! grep -qw -F "${client%:*}" <<<"$ips"; then
    pass "the backend saw the client as HAProxy did ($client), not HAProxy or a node ($(tr -s ' \n' ' ' <<<"$ips"))"
else
    fail "the backend's client address '$client' is the one HAProxy logged, not HAProxy's or a node's ($(tr -s ' \n' ' ' <<<"$ips")): $(lb_saw)"
fi
proxied_more() { local n; n=$(stats_sum proxy_opened); echo "proxy_opened $before_px -> $n"; [ "${n:-0}" -gt "${before_px:-0}" ]; }
if wait_for 10 "the nodes to count the curl's proxied connection" proxied_more >/dev/null; then
    pass "the nodes count proxied connections ($(proxied_more))"
else
    fail "the nodes count proxied connections: $(proxied_more)"
fi
per_node=""
for n in node1 node2 node3; do per_node+="$n=$(node_stat "$n" proxy_opened) "; done
bad=$(stats_sum proxy_header_bad)
if ! grep -q '=0 \|= ' <<<"$per_node" && [ "$bad" = 0 ]; then
    pass "every node proxied connections (proxy_opened: $per_node), proxy_header_bad=$bad (HAProxy's checks send PROXY v2 too)"
else
    fail "proxied connections per node: $per_node proxy_header_bad=$bad"
fi

# ---- 3c. the nodes' local cache (L1) serves, and a revocation reaches it ----
echo "# 3c. local cache: hits, and tlscache-ctl sessions revoke (at ${SECONDS}s)"
# The L1 answers only while the node's master is subscribed to tlscache:revoked (the ACL grants
# the workers' user that one channel): one TLS 1.2 session offered 6 times through the LB visits
# each node twice; each node's second lookup is a local hit.
sget 1.2 id "" "$TLSC_TMP/l1.sess" >/dev/null
l1_before=$(stats_sum lookups_l1_hit)
l1_out=$(repeat_offer 1.2 id "$TLSC_TMP/l1.sess" 6)
l1_more() { local n; n=$(stats_sum lookups_l1_hit); echo "lookups_l1_hit $l1_before -> $n"; [ "${n:-0}" -gt "${l1_before:-0}" ]; }
if ! grep -q ' no$\|^error' <<<"$l1_out" && wait_for 10 "the nodes to count local-cache hits" l1_more >/dev/null; then
    pass "the nodes' local caches serve: $(l1_more), offers: $(sort <<<"$l1_out" | uniq -c | tr -s ' \n' ' ')"
else
    fail "the nodes' local caches serve: $(l1_more); offers: $(tr '\n' ' ' <<<"$l1_out")"
    dc logs --no-color "${NODES[@]}" 2>&1 | grep -i 'revoc\|subscri\|NOPERM' | tail -n 5 >&2
fi
# tlscache-ctl (as the ACL user admin, which may PUBLISH) deletes the session and announces it:
# no node may resume it afterwards, from Redis or from its local cache.
l1_id=$(openssl sess_id -in "$TLSC_TMP/l1.sess" -noout -text | awk '/Session-ID:/{print tolower($2)}')
apass=$(cat "$TLSCACHE_SECRETS_DIR/redis-admin.password")
revoked=$(dc exec -T -e TLSCACHE_REDIS="redis://admin:$apass@redis:6379/0" server1 tlscache-ctl sessions revoke "$l1_id" 2>&1 | tr -d '\r')
l1_after=$(repeat_offer 1.2 id "$TLSC_TMP/l1.sess" 6)
if grep -qx "1 session revoked" <<<"$revoked" && [ "$(grep -c ' no$' <<<"$l1_after")" = 6 ]; then
    pass "tlscache-ctl sessions revoke: '$revoked'; 6 offers after it, none resumed ($(awk '{print $1}' <<<"$l1_after" | sort | uniq -c | tr -s ' \n' ' '))"
else
    fail "a revoked session stops resuming: ctl said '$revoked'; offers after: $(tr '\n' ' ' <<<"$l1_after")"
fi

# ---- 4. one node stopped, then started again ----
echo "# 4. one node stopped, then started again (at ${SECONDS}s)"
dc stop -t 15 server2 >/dev/null 2>&1
if wait_lb node2 DOWN 15; then
    bench node-down --tls 1.2 --mode id --connections 300 --concurrency 8
    if summary=$(bench_check node-down --max-errors 0 --min-rate 0.99 --idle-node node2); then
        pass "node2 stopped, LB noticed: no failed handshake: $summary"
    else
        fail "node2 stopped: $summary"
    fi
else
    fail "HAProxy marks a stopped node DOWN"
fi
# Sessions made while node2 is down (on node1/node3): a TLS 1.2 session ID and a TLS 1.2 ticket.
sget 1.2 id "" "$TLSC_TMP/down-id.sess" >/dev/null
sget 1.2 ticket "" "$TLSC_TMP/down-ticket.sess" >/dev/null
dc start server2 >/dev/null 2>&1
if wait_healthy 60 server2 && wait_lb node2 UP 20; then
    for m in id ticket; do
        out=$(repeat_offer 1.2 "$m" "$TLSC_TMP/down-$m.sess" 6)
        if grep -q '^node2 yes$' <<<"$out" && ! grep -q ' no$\|^error' <<<"$out"; then
            pass "node2 back: resumes a TLS 1.2 $m session made while it was down ($(sort <<<"$out" | uniq -c | tr -s ' \n' ' '))"
        else
            fail "node2 back resumes $m sessions made while down: $(tr '\n' ' ' <<<"$out")"
        fi
    done
else
    fail "node2 healthy and UP again after start"
    dump_logs server2
fi

# ---- 5. Redis restarted under load ----
echo "# 5. Redis restarted under load (at ${SECONDS}s)"
before=$(stats_sum handshakes_resumed)
( bench redis-restart --tls 1.2 --mode id --duration 14 --concurrency 4 ) &
bpid=$!
track "$bpid"
# load_under_way: the servers' stats show the bench's resumptions (published once a second).
load_under_way() { local n; n=$(stats_sum handshakes_resumed); echo "handshakes_resumed $before -> $n"; [ "${n:-0}" -ge $((before + 100)) ]; }
wait_for 10 "the bench to be under way" load_under_way
dc restart -t 5 redis >/dev/null 2>&1
wait "$bpid"
if summary=$(bench_check redis-restart --max-errors 0); then
    pass "Redis restarted under load: every handshake completed: $summary"
else
    fail "Redis restarted under load: $summary"
fi
wait_healthy 30 redis >/dev/null
ok=0
for i in 1 2 3 4 5 6; do
    bench redis-back-$i --tls 1.2 --mode id --connections 200 --concurrency 4 &&
        summary=$(bench_check redis-back-$i --min-rate 0.99 --max-errors 0) && { ok=1; break; }
    sleep 2 # lint: ok (a bounded retry: up to 6 bench runs until resumption is back)
done
if [ "$ok" = 1 ]; then pass "resumption back after the Redis restart: $summary"; else fail "resumption back after the Redis restart: $summary"; fi

# ---- 6. the key daemon restarted: earlier tickets still resume ----
echo "# 6. the key daemon restarted: earlier tickets still resume (at ${SECONDS}s)"
sget 1.2 ticket "" "$TLSC_TMP/pre-keyd-12.sess" >/dev/null
sget 1.3 ticket "" "$TLSC_TMP/pre-keyd-13.sess" >/dev/null
since=$(date +%s)
dc restart -t 10 cache-daemon >/dev/null 2>&1
# adopted: the restarted daemon took the key set a reconnecting worker handed it.
adopted() { docker logs --since "$since" "$(cid cache-daemon)" 2>&1 | grep -E 'adopted [0-9]+ keys' || { echo "no adoption logged"; false; }; }
if wait_healthy 30 cache-daemon && wait_for 30 "the restarted daemon to adopt the workers' keys" adopted; then
    out12=$(repeat_offer 1.2 ticket "$TLSC_TMP/pre-keyd-12.sess" 3)
    out13=$(sget 1.3 ticket "$TLSC_TMP/pre-keyd-13.sess" "")
    if ! grep -q ' no$\|^error' <<<"$out12"$'\n'"$out13"; then
        pass "daemon restarted: tickets issued before still resume (TLS 1.2: $(tr '\n' ' ' <<<"$out12")TLS 1.3: $out13)"
    else
        fail "daemon restarted: earlier tickets resume: TLS 1.2: $(tr '\n' ' ' <<<"$out12") TLS 1.3: $out13"
        dump_logs cache-daemon
    fi
    bench keyd-back --tls 1.3 --mode ticket --connections 300 --concurrency 8
    if summary=$(bench_check keyd-back --min-rate 0.99 --min-nodes 3 --max-errors 0); then
        pass "after the daemon restart, new tickets resume on every node: $summary"
    else
        fail "after the daemon restart: $summary"
    fi
else
    fail "cache-daemon healthy after restart"
    dump_logs cache-daemon
fi

# ---- 7. TLS 1.3 stateful tickets through Redis (--resumption cache) ----
echo "# 7. TLS 1.3 stateful tickets through Redis (--resumption cache) (at ${SECONDS}s)"
# The workers' counters that say where each lookup ended: one line per worker's stats hash,
# "KEY v1 v2 ...", in SPLIT's order (misses_explained.py diffs them hash by hash).
SPLIT="handshakes_full handshakes_resumed lookups_l1_hit lookups_hit lookups_miss lookups_timeout lookups_error lookups_skipped l1_taken_elsewhere records_bad stores_ok stores_timeout stores_error stores_skipped"
split_now() {
    dc exec -T redis sh -c 'for k in $(redis-cli --scan --pattern "tlscache:stats:*"); do
        echo "$k $(redis-cli hmget "$k" '"$SPLIT"' | tr "\n" " ")"; done' 2>/dev/null | tr -d '\r'
}
# explained NAME BEFORE [--min-rate R]: the run's misses are counted timeouts (else exit 1); exit 3
# while the workers (publishing once a second) have not yet counted every handshake.
explained() { python3 "$CLUSTER_LIB/misses_explained.py" "$TLSC_TMP/out/$1.json" "$SPLIT" "$2" "$(split_now)" "${@:3}"; }
# judge_explained NAME BEFORE: polls explained until the counters are complete; prints its line.
judge_explained() {
    local rc=3 deadline=$((SECONDS + 15)) out
    while [ $rc = 3 ] && [ $SECONDS -lt $deadline ]; do
        out=$(explained "$@")
        rc=$?
    done
    echo "$out"
    return $rc
}
# stateful_resumes: a TLS 1.3 stateful ticket made through the LB resumes through it.
stateful_resumes() {
    local out
    rm -f "$TLSC_TMP/ready.sess"
    sget 1.3 id "" "$TLSC_TMP/ready.sess" >/dev/null
    out=$(sget 1.3 id "$TLSC_TMP/ready.sess" "")
    echo "second connection: $out"
    [[ $out == *" yes" ]]
}
if TLSCACHE_RESUMPTION=cache dc up -d --no-deps "${NODES[@]}" >/dev/null 2>&1 && wait_healthy 60 "${NODES[@]}" &&
    wait_lb node1 UP 20 && wait_lb node2 UP 20 && wait_lb node3 UP 20 &&
    # Healthy nodes whose workers' Redis links are up (a worker accepts once its link is up,
    # or after a bounded warm-up): sessions resume through the LB.
    wait_for 30 "a stateful TLS 1.3 session to resume through the LB" stateful_resumes; then
    before=$(split_now)
    bench "bench-tls1.3-id" --tls 1.3 --mode id --connections 600 --concurrency 8
    if summary=$(bench_check "bench-tls1.3-id" --min-nodes 3 --max-errors 0); then
        pass "bench through LB (nodes with --resumption cache): $summary"
    else
        fail "bench through LB, TLS 1.3 stateful: $summary"
    fi
    # Under the load of a 2-core CI machine a lookup may miss the default 10 ms --lookup-timeout,
    # or a store its timeout (the ticket then exists nowhere), and the handshake goes on in full:
    # allowed when counted. A session lost without a counted cause is not.
    check "TLS 1.3 stateful through the LB: every miss a counted timeout or failed store" \
        judge_explained "bench-tls1.3-id" "$before"
    chain_check 1.3 id
else
    fail "nodes switched to --resumption cache and healthy"
    dump_logs "${NODES[@]}"
fi

# ---- 8. down -v leaves nothing behind ----
echo "# 8. down -v leaves nothing behind (at ${SECONDS}s)"
if [ -z "${TLSC_CLUSTER_KEEP:-}" ]; then
    dc down -v --remove-orphans -t 10 >/dev/null 2>&1
    left=$(
        docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
        docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
        docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
    )
    if [ -z "$left" ]; then pass "compose down -v: no container, network or volume left"; else fail "compose down -v left: $(tr '\n' ' ' <<<"$left")"; fi
fi

finish
