#!/usr/bin/env bash
# --store-replicas 1 on a real Redis Cluster (3 masters + 3 replicas on loopback): every new
# session's store goes to its key's master followed by WAIT 1 on that master's wait link, so
# every master that got sessions counts WAIT calls (INFO commandstats), also for sessions stored
# while slots are half-migrated (ASK: ASKING + the transaction + WAIT on the importing master)
# and while 500 slots are resharded under load (MOVED and ASK).
# A master is SIGKILLed right after sessions were made: once its replica is promoted, every one
# of them still resumes. The promoted master has no replica left: its WAITs come back short and
# its stores skip WAIT for a while, while the other two masters go on waiting for theirs (the
# back-off is per master).
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
mkdir -p "$OUT"

start_redis_cluster || exit 1
M=($(rc_masters))
echo "masters ${M[*]}"
check "every_master_has_its_replica_online" wait_for 60 "replicas in sync" rc_replicas_online
REDIS_URL="redis-cluster://127.0.0.1:${RC_PORTS[0]},127.0.0.1:${RC_PORTS[1]},127.0.0.1:${RC_PORTS[2]}"
export REDIS_URL
PA=$(free_port) AA=$(free_port)
# Long timeouts (as redis_cluster.sh): this test is about where the stores and WAITs go, and
# six Redis nodes next to a sanitized node stall now and then. Without the local cache every
# resumption comes from Redis.
GENEROUS_TIMEOUTS=0 start_node A "$PA" --store-replicas 1 --lookup-timeout 1000 --store-timeout 2000 --local-cache 0 \
    --admin "127.0.0.1:$AA" || exit 1

metric() { curl -s --max-time 5 "http://127.0.0.1:$AA/metrics" >"$OUT/m" && $PROM value "$OUT/m" "$@"; }
waits() { metric tlscache_store_waits_total worker=all outcome="$1"; }
ready() {
    local s
    s=$(curl -s -o "$OUT/body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$AA/readyz")
    echo "readyz $s $(head -c 200 "$OUT/body")"
    [ "$s" = 200 ]
}
# calls PORT CMD...: how many times the Redis at PORT ran each CMD (INFO commandstats, one
# snapshot), space-separated. Redis counts a WAIT when it answers, a moment after its EXEC.
calls() {
    local port=$1
    shift
    redis-cli -p "$port" info commandstats | tr -d '\r' |
        awk -F'[:=,]' -v want="$*" 'BEGIN { n = split(want, w, " ") } { c[$1] = $3 }
            END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), c["cmdstat_" w[i]] + 0; print "" }'
}
wait_calls() { calls "$1" wait; }
# each_exec_waited PORT EXEC0 WAIT0: since the counts EXEC0 / WAIT0, every EXEC the master ran
# (a store: with TLS 1.2 alone, lookups are HGETs) was followed by a WAIT, and there was one.
each_exec_waited() {
    local e w
    read -r e w <<<"$(calls "$1" exec wait)"
    echo "master $1: EXEC $2 -> $e, WAIT $3 -> $w"
    [ $((e - $2)) -gt 0 ] && [ $((e - $2)) = $((w - $3)) ]
}
# wait_links PORT: connections to the Redis at PORT whose last command was WAIT.
wait_links() { redis-cli -p "$1" client list | grep -c ' cmd=wait '; }

check "readyz_200_once_every_master_answers" wait_for 30 "node A ready" ready
check "every_worker_opened_a_wait_link_to_every_master" \
    wait_for 20 "2 workers x 3 masters wait links" bash -c '[ "$(grep -c "(stores+WAIT): connected" "$1")" -ge 6 ]' _ "$TLSC_TMP/A.log"

# F counts handshakes that got no reply (a failed handshake).
F=$TLSC_TMP/failed
: >"$F"
hs() { sget "$PA" 1.2 "" "$1" "$2" || { echo x >>"$F"; return 1; }; }
# make_sessions TAG N: N new TLS 1.2 sessions, each saved in $TLSC_TMP/TAG-i.
make_sessions() { local i; for i in $(seq "$2"); do hs "" "$TLSC_TMP/$1-$i" >/dev/null; done; }
# resumed TAG N: how many of the N saved sessions resume (each offered once); prints the count.
resumed() {
    local i r ok=0
    for i in $(seq "$2"); do
        r=$(hs "$TLSC_TMP/$1-$i" "") && [ "$(jfield "$r" resumed)" = true ] && ok=$((ok + 1))
    done
    echo "$ok"
}

# --- every store waited, on its own master ---------------------------------------------------------
# (from here: a store made while a replica was still syncing may have skipped WAIT, rightly)
declare -A E0 W0
for p in "${M[@]}"; do read -r "E0[$p]" "W0[$p]" <<<"$(calls "$p" exec wait)"; done
make_sessions pre 30
counts=""
for p in "${M[@]}"; do counts="$counts $p: $(rc_sessions "$p") sessions, $(wait_calls "$p") WAIT calls;"; done
echo "per master:$counts"
# every_master_waited: each master holds sessions and served at least as many WAITs as it holds
# sessions (each store on it waited there; a store whose WAIT was skipped would be missing).
every_master_waited() {
    local p s w
    for p in "${M[@]}"; do
        s=$(rc_sessions "$p") w=$(wait_calls "$p")
        [ "$s" -gt 0 ] && [ "$w" -ge "$s" ] || { echo "master $p: $s sessions, $w WAIT calls"; return 1; }
    done
}
check "every_master_with_sessions_served_a_wait_per_session" every_master_waited
for i in 0 1 2; do
    check "every_store_on_master_${i}_was_followed_by_wait" wait_for 5 "a WAIT per EXEC" \
        each_exec_waited "${M[$i]}" "${E0[${M[$i]}]}" "${W0[${M[$i]}]}"
done
check "wait_runs_on_a_link_of_its_own" [ "$(wait_links "${M[0]}")/$(wait_links "${M[1]}")/$(wait_links "${M[2]}")" != 0/0/0 ]
check "thirty_stores_acked_by_a_replica" [ "$(waits acked)" -ge 30 ]
check "thirty_sessions_resume" [ "$(resumed pre 30)" = 30 ]

# --- ASK: stores into half-migrated slots go with ASKING, and WAIT follows them there -------------
read -r first last <<<"$(redis-cli -p "${M[0]}" cluster nodes | tr -d '\r' | awk -v p=":${M[0]}@" 'index($2, p) {
    for (i = 9; i <= NF; i++) if ($i !~ /^\[/ && split($i, r, "-") == 2 && r[2] - r[1] > best) { best = r[2] - r[1]; out = r[1] " " r[2] } }
    END { print out }')"
asks() { metric tlscache_redis_cluster_redirects_total worker=all kind=ask; }
ask0=$(asks) dst0=$(wait_calls "${M[1]}") acked0=$(waits acked) skipped0=$(waits skipped)
check "2000_slots_opened_for_migration" python3 "$TLSC_ROOT/tests/lib/rc_migrate.py" open "${M[0]}" "${M[1]}" "$first" 2000
timeout 120 "$BENCH" --target "127.0.0.1:$PA" --quiet --json "$OUT/ask.json" --connections 120 --concurrency 2 --tls 1.3 \
    --new-session-every 2 >"$OUT/ask.txt" 2>&1
ask_ok() {
    local v
    v=$(jq -r '[.resumption.offered > 0, .resumption.resumed == .resumption.offered, .errors.total == 0] | all' "$OUT/ask.json")
    echo "offered $(jq .resumption.offered "$OUT/ask.json") resumed $(jq .resumption.resumed "$OUT/ask.json") errors $(jq .errors.total "$OUT/ask.json")"
    [ "$v" = true ]
}
check "resumption_is_100_percent_while_slots_are_half_migrated" ask_ok
check "ask_redirects_were_followed" [ "$(asks)" -gt "$ask0" ]
# The stores of the run all waited: as many more acked WAITs as the run made new sessions (the
# workers' once-a-second stats records wait too), and none went without WAIT.
stores_waited() {
    local got want skipped
    got=$(($(waits acked) - acked0)) want=$(jq .handshakes.full "$OUT/ask.json") skipped=$(($(waits skipped) - skipped0))
    echo "acked WAITs $got, new sessions $want, stores without WAIT $skipped"
    [ "$got" -ge "$want" ] && [ "$skipped" = 0 ]
}
check "every_store_during_the_migration_waited" wait_for 5 "acked WAITs" stores_waited
check "the_importing_master_served_waits" [ "$(wait_calls "${M[1]}")" -gt "$dst0" ]
check "the_half_migrated_slots_moved_and_closed" python3 "$TLSC_ROOT/tests/lib/rc_migrate.py" close "${M[0]}" "${M[1]}" "$first" 2000 "${M[2]}"

# --- a reshard under load: MOVED (and ASK) on stores; every store still waits where it landed -------
# With TLS 1.2 alone every EXEC is a store, also a redirected one: the node it was refused by ran
# the EXEC (EXECABORT) and the WAIT sent after it, the node it went to runs both again.
redirects() { metric tlscache_redis_cluster_redirects_total worker=all; }
red0=$(redirects) skipped0=$(waits skipped)
for p in "${M[@]}"; do read -r "E0[$p]" "W0[$p]" <<<"$(calls "$p" exec wait)"; done
timeout 120 redis-cli --cluster reshard "127.0.0.1:${M[1]}" --cluster-from "$(rc_id "${M[1]}")" --cluster-to "$(rc_id "${M[2]}")" \
    --cluster-slots 500 --cluster-yes --cluster-pipeline 5 >"$OUT/reshard.log" 2>&1 &
RESHARD=$!
track "$RESHARD"
bad=0
for i in 1 2 3 4 5 6; do
    timeout 60 "$BENCH" --target "127.0.0.1:$PA" --quiet --json "$OUT/reshard$i.json" --duration 3 --concurrency 4 --tls 1.2 \
        --new-session-every 3 >/dev/null 2>&1
    [ "$(jq -r '.resumption.resumed == .resumption.offered and .errors.total == 0' "$OUT/reshard$i.json")" = true ] || bad=$((bad + 1))
    kill -0 "$RESHARD" 2>/dev/null || break
done
wait "$RESHARD"
rc=$?
check "reshard_of_500_slots_completed" [ "$rc" = 0 ]
check "resumption_stays_100_percent_during_the_reshard" [ "$bad" = 0 ]
echo "redirects followed during the reshard: $(($(redirects) - red0))"
check "redirects_were_followed_during_the_reshard" [ "$(redirects)" -gt "$red0" ]
check "no_store_went_without_wait_during_the_reshard" [ "$(waits skipped)" = "$skipped0" ]
for i in 0 1 2; do
    check "every_store_on_master_${i}_waited_during_the_reshard" wait_for 5 "a WAIT per EXEC" \
        each_exec_waited "${M[$i]}" "${E0[${M[$i]}]}" "${W0[${M[$i]}]}"
done

# --- a master killed right after sessions were made: they resume on its promoted replica ----------
log0=$(wc -l <"$TLSC_TMP/A.log")
victim=${M[2]}
pid_var=RC_PID_$victim
before=$(rc_sessions "$victim")
make_sessions post 30
kill -KILL "${!pid_var}"
echo "master :$victim killed right after the 30 sessions (it held $before before them)"
promoted() { rc_masters "${M[0]}" | grep -vx "$victim" | wc -l | grep -qx 3; }
check "a_replica_was_promoted" wait_for 60 "three masters again" promoted
NEW=$(rc_masters "${M[0]}" | grep -vxF -e "${M[0]}" -e "${M[1]}")
# /readyz may still say what it saw before the kill (its gauges are a second old): first both
# workers' links to the promoted master, which they open when their slot map names it.
links_to_new() { local n; n=$(grep -c "127.0.0.1:$NEW/0: connected" "$TLSC_TMP/A.log"); echo "$n links to :$NEW"; [ "$n" -ge 2 ]; }
check "both_workers_route_to_the_promoted_master" wait_for 30 "links to the promoted master" links_to_new
check "node_ready_again_after_the_promotion" wait_for 30 "node A ready" ready
echo "promoted replica :$NEW holds $(rc_sessions "$NEW") sessions ($(($(rc_sessions "$NEW") - before)) made just before the kill)"
all_resume() {
    local n
    n=$(resumed post 30)
    echo "$n of 30 sessions made right before the kill resumed"
    [ "$n" = 30 ]
}
check "sessions_made_right_before_the_kill_all_resume" all_resume
check "no_handshake_failed" [ "$(wc -l <"$F")" = 0 ]

# --- the back-off is per master: the promoted one has no replica, the others still wait ------------
short0=$(waits short)
k=0
short_and_skipped() {
    k=$((k + 1))
    make_sessions alone-$k 10
    echo "short=$(waits short) skipped=$(waits skipped)"
    [ "$(waits short)" -gt "$short0" ] && [ "$(waits skipped)" -ge 1 ]
}
check "without_a_replica_the_promoted_master_skips_wait_after_a_short_one" wait_for 60 "short and skipped WAITs" short_and_skipped
check "the_short_wait_is_logged_naming_that_master" log_has "$TLSC_TMP/A.log" "redis cluster 127.0.0.1:$NEW .*stored without waiting for replicas"
# While the promoted master's stores skip WAIT (it answered short, and does again every second),
# every store on the two others still waits: each of their EXECs is followed by a WAIT.
read -r e0 w0 <<<"$(calls "${M[0]}" exec wait)"
read -r e1 w1 <<<"$(calls "${M[1]}" exec wait)"
make_sessions others 30
check "master_0_still_waits_for_its_replica" wait_for 5 "a WAIT per EXEC" each_exec_waited "${M[0]}" "$e0" "$w0"
check "master_1_still_waits_for_its_replica" wait_for 5 "a WAIT per EXEC" each_exec_waited "${M[1]}" "$e1" "$w1"
# Since the kill, only the promoted master's stores went without WAIT.
tail -n +$((log0 + 1)) "$TLSC_TMP/A.log" >"$OUT/after_kill.log"
check "no_master_named_but_the_promoted_one_skips" [ "$(grep -c 'stored without waiting for replicas' "$OUT/after_kill.log")" = \
    "$(grep -c "redis cluster 127.0.0.1:$NEW .*stored without waiting for replicas" "$OUT/after_kill.log")" ]
finish
