#!/usr/bin/env bash
# The local cache's flush watch on a real Redis Cluster (3 masters + 3 replicas): a node plants
# one marker per master (<prefix>:l1:<node>:{tag}, the tag hashing into that master's slots),
# so a FLUSHALL on a master that does not hold the old single marker's slot
# (<prefix>:l1:<node>) still drops the node's L1 within the watch's bound, and the marker is
# planted there again; a slot map that takes a master's marker slot away gets that master a
# marker with a new tag. Every request stays in one slot: the router refuses none.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
. "$TLSC_ROOT/tests/lib/redis_cluster.sh"
need redis-server redis-cli openssl jq python3 curl timeout
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
S=$TLSC_TMP/sess

start_redis_cluster || exit 1
PA=$(free_port) AA=$(free_port)
"$SERVER_BIN" --listen "127.0.0.1:$PA" --workers 2 --node A --cluster test \
    --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/a.key" \
    --redis "redis-cluster://127.0.0.1:${RC_PORTS[0]},127.0.0.1:${RC_PORTS[1]},127.0.0.1:${RC_PORTS[2]}" \
    --lookup-timeout 1000 --store-timeout 2000 --admin "127.0.0.1:$AA" --log-level info >>"$TLSC_TMP/A.log" 2>&1 &
track $!
wait_port "$PA" 15 || { tail -20 "$TLSC_TMP/A.log" >&2; exit 1; }
read -r -a MASTERS <<<"$(rc_masters | tr '\n' ' ')"
echo "masters: ${MASTERS[*]}"

# The markers of node A on master PORT (SCAN on that node only).
markers_on() { redis-cli -p "$1" --scan --pattern 'tlscache:l1:A:*'; }
# Each master holds exactly one marker of A, planted at least 3 s ago (TTL <= 86397): every
# worker's first check, which may find it missing and drop the L1, is over.
one_old_marker_per_master() {
    local p k t
    for p in "${MASTERS[@]}"; do
        k=$(markers_on "$p")
        t=$([ -n "$k" ] && redis-cli -p "$p" ttl "$k")
        echo "master $p: markers [$(echo $k)] ttl ${t:-none}"
        [ "$(grep -c . <<<"$k")" = 1 ] && [ "$t" -gt 0 ] && [ "$t" -le 86397 ] || return 1
    done
}
check "one_marker_on_every_master" wait_for 20 "a marker of A on each of the three masters, 3 s old" one_old_marker_per_master
marker_slots_distinct() {
    local p n
    n=$(for p in "${MASTERS[@]}"; do redis-cli -p "$p" cluster keyslot "$(markers_on "$p")"; done | sort -u | wc -l)
    echo "distinct marker slots: $n"
    [ "$n" = 3 ]
}
check "the_markers_live_in_three_slots" marker_slots_distinct

# The old single marker's slot, and a master that does not hold it (where a FLUSHALL went unseen).
old_master=""
for p in "${MASTERS[@]}"; do
    # Only the master that holds the slot answers with a number; the others answer MOVED.
    [[ "$(redis-cli -p "$p" exists tlscache:l1:A)" =~ ^[0-9]+$ ]] && old_master=$p
done
flushed=""
for p in "${MASTERS[@]}"; do
    [ "$p" != "$old_master" ] && flushed=$p
done
echo "tlscache:l1:A would live on $old_master; FLUSHALL goes to $flushed"
both_found() { [ -n "$old_master" ] && [ -n "$flushed" ]; }
check "found_a_master_other_than_the_old_markers" both_found

only_in_l1() { # only_in_l1 FILE: a session of node A that is in A's L1 and no longer in Redis
    sget "$PA" 1.2 a.example "" "$1" >/dev/null && redis-cli -c -p "${MASTERS[0]}" del "tlscache:sess:$(sess_id "$1")" >/dev/null
}
resumes() { # resumes FILE true|false: the session's next resumption on A says so; prints what it saw
    local r
    r=$(sget "$PA" 1.2 a.example "$1" "")
    echo "resumed=$(jfield "$r" resumed)"
    [ "$(jfield "$r" resumed)" = "$2" ]
}
l1_serves() { only_in_l1 "$S.n" && resumes "$S.n" true; }
check "the_l1_serves_a_session_gone_from_redis" wait_for 15 "an L1 resumption" l1_serves

flushes_seen() { # l1_flushes_seen summed over A's stats hashes, wherever their slots are
    local total=0 p k v
    for p in "${MASTERS[@]}"; do
        for k in $(redis-cli -p "$p" --scan --pattern 'tlscache:stats:A:*'); do
            v=$(redis-cli -p "$p" hget "$k" l1_flushes_seen)
            total=$((total + ${v:-0}))
        done
    done
    echo "$total"
}
only_in_l1 "$S.x"
check "before_the_flush_the_l1_still_resumes_it" resumes "$S.x" true
before=$(flushes_seen)
redis-cli -p "$flushed" flushall >/dev/null
check "flushall_on_another_master_drops_the_l1_within_the_bound" wait_for 6 "a full handshake after FLUSHALL on $flushed" \
    resumes "$S.x" false
seen_more() { local n; n=$(flushes_seen); echo "l1_flushes_seen: $before -> $n"; [ "$n" -gt "$before" ]; }
check "the_flush_is_counted" wait_for 5 "l1_flushes_seen counted" seen_more
replanted() { local k; k=$(markers_on "$flushed"); echo "markers on $flushed: [$k]"; [ -n "$k" ]; }
check "the_marker_is_planted_again_on_the_flushed_master" wait_for 5 "A's marker back on $flushed" replanted
check "the_l1_serves_again_after_the_flush" wait_for 15 "an L1 resumption" l1_serves

# --- a new slot map re-plans the markers ---------------------------------------------------
# The slot of the flushed master's marker moves to another master, by hand, the way
# redis-cli --cluster reshard moves a slot (IMPORTING / MIGRATING, MIGRATE its keys, SETSLOT
# NODE everywhere). That master then holds no marker of A until the watch, at the next slot map,
# picks a new tag in a slot it still holds and plants it there.
src=$flushed dst=$old_master
key=$(markers_on "$src")
slot=$(redis-cli -p "$src" cluster keyslot "$key")
sid=$(rc_id "$src") did=$(rc_id "$dst")
echo "moving slot $slot ($key) from $src to $dst"
redis-cli -p "$dst" cluster setslot "$slot" importing "$sid" >/dev/null
redis-cli -p "$src" cluster setslot "$slot" migrating "$did" >/dev/null
for k in $(redis-cli -p "$src" cluster getkeysinslot "$slot" 1000); do
    redis-cli -p "$src" migrate 127.0.0.1 "$dst" "$k" 0 5000 >/dev/null
done
for p in "$dst" "$src" "${MASTERS[@]}"; do
    redis-cli -p "$p" cluster setslot "$slot" node "$did" >/dev/null
done
check "the_moved_marker_is_no_longer_on_its_old_master" [ -z "$(markers_on "$src")" ]
new_marker() { local k; k=$(markers_on "$src"); echo "markers on $src: [$k] (the old one: $key)"; [ -n "$k" ] && [ "$k" != "$key" ]; }
check "a_new_slot_map_plants_a_marker_with_a_new_tag_on_that_master" wait_for 15 "a new marker of A on $src" new_marker
check "the_l1_serves_after_the_map_change" wait_for 15 "an L1 resumption" l1_serves

log_clean() { ! grep -q "not all in the slot of its key" "$TLSC_TMP/A.log"; }
check "no_request_broke_the_one_slot_rule" log_clean
finish
