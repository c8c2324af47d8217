#!/usr/bin/env bash
# tlscache-ctl and tlscache-bench's stats reader on the Redis forms beyond one node.
# Redis Cluster (3 masters + 3 replicas): sessions list shows the sessions of all three masters,
# show finds one wherever it is, stats sums the workers' hashes wherever they hash to, revoke
# --sni deletes on every master (each revocation published once) and a revoked session then gets
# a full handshake; a key whose slot is being migrated is listed, shown and revoked through MOVED
# and ASK. The bench reads the servers' counters from every master. Sentinel: the ctl asks the
# sentinels in order (a dead one is skipped) with their own password (--redis-sentinel-pass-file or
# TLSCACHE_REDIS_SENTINEL_PASS; without it, one NOAUTH line), authenticates on the master they name, and refuses
# a node whose ROLE is not master, or an answer that is not a host and a port.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
. "$TLSC_ROOT/tests/lib/redis_cluster.sh"
need redis-server redis-sentinel redis-cli openssl jq python3 timeout
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
. "$TLSC_ROOT/tests/lib/ctl.sh" # ctl NAME ARGS..., resumed; outputs in $O
BENCH=$TLSC_BIN/bench/tlscache-bench

# ================================ Redis Cluster ================================
start_redis_cluster || exit 1
export TLSCACHE_REDIS="redis-cluster://127.0.0.1:${RC_PORTS[0]},127.0.0.1:${RC_PORTS[1]}"
M=($(rc_masters))
echo "masters: ${M[*]}"
PA=$(free_port)
PB=$(free_port)
GENEROUS_TIMEOUTS=1 REDIS_URL=$TLSCACHE_REDIS start_node A "$PA" --resumption cache || exit 1
GENEROUS_TIMEOUTS=1 WORKERS=1 REDIS_URL=$TLSCACHE_REDIS start_node B "$PB" --resumption cache || exit 1

# Sessions for two names until every master holds some (each key lands on its slot's master).
S=$TLSC_TMP/sess
# every_master_has_one: each master holds a session key.
every_master_has_one() {
    local p
    for p in "${M[@]}"; do [ "$(rc_sessions "$p")" -gt 0 ] || return 1; done
}
n=0
for i in $(seq 1 40); do # 12 at least; past that, until every master holds one (bounded)
    [ "$n" -ge 12 ] && every_master_has_one && break
    n=$((n + 1))
    sget "$PA" 1.2 "$([ $((n % 2)) = 0 ] && echo a.example || echo b.example)" "" "$S.$n" >/dev/null
done
echo "$n sessions made; per master: $(for p in "${M[@]}"; do printf '%s ' "$(rc_sessions "$p")"; done)"
check "sessions land on all three masters" wait_for 10 "a session on every master" every_master_has_one
total() { local p t=0; for p in "${M[@]}"; do t=$((t + $(rc_sessions "$p"))); done; echo "$t"; }
all_stored() { local t; t=$(total); echo "$t of $n stored"; [ "$t" = "$n" ]; }
check "every session made is stored" wait_for 10 "$n sessions in the cluster" all_stored
T=$(total)
ctl list sessions list --limit 1000 >/dev/null
check "sessions list shows every session of the cluster ($T)" [ "$(grep -cE '^[0-9a-f]{64} ' "$O/list")" = "$T" ]
# on_master PORT: one session ID that master holds is in the list.
on_master() {
    local id
    id=$(redis-cli -p "$1" --scan --pattern 'tlscache:sess:*' | head -1 | sed 's/^tlscache:sess://')
    echo "master $1: ${id:0:8}"
    grep -qE "^$id " "$O/list"
}
check "the list holds a session from master ${M[0]}" on_master "${M[0]}"
check "the list holds a session from master ${M[1]}" on_master "${M[1]}"
check "the list holds a session from master ${M[2]}" on_master "${M[2]}"
ID2=$(redis-cli -p "${M[2]}" --scan --pattern 'tlscache:sess:*' | head -1 | sed 's/^tlscache:sess://')
check "sessions show finds a session on the third master" grep -qE '^node +A$' <(ctl show sessions show "$ID2")
check "sessions list --limit 2 stops after two, across masters" [ "$(ctl l2 sessions list --limit 2 | grep -cE '^[0-9a-f]{64} ')" = 2 ]

# stats: three workers (A's two, B's one), their hashes on whichever masters their keys hash to.
three_workers() { ctl stats stats >/dev/null; [ "$(awk '$1 == "(cluster)" { print $2 }' "$O/stats")" = 3 ]; }
check "stats sums the three workers' hashes over the masters" wait_for 10 "3 workers in the cluster line" three_workers
check "stats counts A's full handshakes ($n)" [ "$(awk '$1 == "A" { print $4 }' "$O/stats")" -ge "$n" ]

# revoke --sni: every master's a.example sessions go, b.example ones stay; each key published once.
redis-cli -p "${M[1]}" subscribe tlscache:revoked >"$TLSC_TMP/revoked.txt" &
track $!
check "a subscriber listens on tlscache:revoked (master ${M[1]})" wait_for 5 "the subscription" grep -q '^subscribe' "$TLSC_TMP/revoked.txt"
NA=$(ctl la sessions list --sni a.example --limit 1000 | grep -cE '^[0-9a-f]{64} ')
NB=$(ctl lb sessions list --sni b.example --limit 1000 | grep -cE '^[0-9a-f]{64} ')
SA=$(for i in $(seq 1 "$n"); do [ $((i % 2)) = 0 ] && echo "$S.$i"; done | head -1)
check "the a.example session $SA resumes before the revocation" [ "$(resumed "$PB" a.example "$SA")" = true ]
check "revoke --sni a.example deletes all $NA, over the masters" [ "$(ctl r1 sessions revoke --sni a.example)" = "$NA sessions revoked" ]
check "no a.example session is left on any master" [ "$(ctl la2 sessions list --sni a.example | grep -cE '^[0-9a-f]{64} ')" = 0 ]
check "the $NB b.example sessions are all there" [ "$(ctl lb2 sessions list --sni b.example --limit 1000 | grep -cE '^[0-9a-f]{64} ')" = "$NB" ]
check "the revoked session gets a full handshake" [ "$(resumed "$PB" a.example "$SA")" = false ]
published() { local c; c=$(grep -cE '^tlscache:sess:[0-9a-f]{64}$' "$TLSC_TMP/revoked.txt"); echo "published: $c"; [ "$c" = "$NA" ]; }
check "each revoked key is published once ($NA), seen on one master" wait_for 5 "$NA publications" published

# A slot in migration: the key moves to another master; the ctl follows MOVED then ASK.
# A b.example session (the full handshake just above made a new a.example one, which SCAN could
# pick first) on whichever master holds one (SRC), to move to the next master (DST).
KEY= SRC= DST=
for i in 0 1 2; do
    for k in $(redis-cli -p "${M[$i]}" --scan --pattern 'tlscache:sess:*'); do
        [ "$(redis-cli -p "${M[$i]}" hget "$k" sni)" = b.example ] && { KEY=$k SRC=${M[$i]} DST=${M[$(((i + 1) % 3))]}; break 2; }
    done
done
check "a b.example session is left to move ($KEY)" [ -n "$KEY" ]
KID=${KEY#tlscache:sess:}
SLOT=$(redis-cli -p "$SRC" cluster keyslot "$KEY")
redis-cli -p "$DST" cluster setslot "$SLOT" importing "$(rc_id "$SRC")" >/dev/null
redis-cli -p "$SRC" cluster setslot "$SLOT" migrating "$(rc_id "$DST")" >/dev/null
redis-cli -p "$SRC" migrate 127.0.0.1 "$DST" "" 0 5000 keys "$KEY" >/dev/null
# holds PORT: the key is on that master (SCAN sees the keys a node holds, whatever the slot's state).
holds() { redis-cli -p "$1" --scan --pattern "$KEY" | grep -c .; }
check "the key of slot $SLOT moved to master $DST mid-migration" [ "$(holds "$SRC")/$(holds "$DST")" = 0/1 ]
check "sessions list still shows it (MOVED, then ASK)" grep -qE "^$KID " <(ctl mg1 sessions list --limit 1000)
check "sessions show finds it (ASK)" grep -qE '^sni +b\.example$' <(ctl mg2 sessions show "$KID")
check "revoke ID deletes it where it is" [ "$(ctl mg3 sessions revoke "$KID")" = "1 session revoked" ]
check "it is gone from both masters" [ "$(holds "$SRC")/$(holds "$DST")" = 0/0 ]
redis-cli -p "$SRC" cluster setslot "$SLOT" stable >/dev/null
redis-cli -p "$DST" cluster setslot "$SLOT" stable >/dev/null
# The bench's stats reader on the cluster URL: its view of the servers agrees with its own counts.
# First every worker publishes once more (they write about once a second), so the handshakes made
# above are in the bench's "before" reading, not in its window.
stats_written_after() { # stats_written_after T: all three workers' stats hashes were written after wall second T
    local m k u n=0
    for m in "${M[@]}"; do
        for k in $(redis-cli -p "$m" --scan --pattern 'tlscache:stats:*'); do
            u=$(redis-cli -p "$m" hget "$k" updated)
            [ "${u:-0}" -gt "$1" ] || { echo "$k updated at ${u:-never}"; return 1; }
            n=$((n + 1))
        done
    done
    [ "$n" = 3 ] || { echo "$n stats hashes"; return 1; }
}
T=$(($(date +%s) + 1))
check "every worker published its stats after the last handshake" wait_for 15 "three fresh stats hashes" stats_written_after "$T"
timeout 60 "$BENCH" --target "127.0.0.1:$PA" --target "127.0.0.1:$PB" --tls 1.2 --mode id --connections 60 --concurrency 4 \
    --sni c.example --redis "$TLSCACHE_REDIS" --redis-settle 2500 --json "$O/bench.json" >"$O/bench.txt" 2>&1
check "bench --redis redis-cluster:// reads every worker's stats (3) and agrees on full and resumed" \
    [ "$(jq '[.server.total.handshakes_full + .server.total.handshakes_resumed == .handshakes.full + .handshakes.resumed,
              ([.server.nodes[].workers] | add) == 3, .handshakes.full + .handshakes.resumed == 60] | all' "$O/bench.json")" = true ]

ctl bad sessions list --redis "redis-cluster://127.0.0.1:$(free_port)"
check "a cluster with no seed that answers exits 1 on one line" [ "$?/$(grep -c 'no seed gave a slot map' "$O/bad")/$(wc -l <"$O/bad")" = 1/1/1 ]

# ================================ Sentinel ================================
PW='sentinel-pass-7'
SPW='the sentinels own pw'
(umask 077 && echo "$PW" >"$TLSC_TMP/redis.pass" && echo "$SPW" >"$TLSC_TMP/sentinel.pass")
data_node() {
    local port=$1
    shift
    mkdir -p "$TLSC_TMP/redis-$port"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --requirepass "$PW" --masterauth "$PW" \
        --dir "$TLSC_TMP/redis-$port" --logfile "$TLSC_TMP/redis-$port/redis.log" --daemonize no "$@" &
    track $!
    wait_port "$port" 10
}
DM=$(free_port)
DR=$(free_port)
data_node "$DM" || exit 1
data_node "$DR" --replicaof 127.0.0.1 "$DM" || exit 1
SP=$(free_port)
mkdir -p "$TLSC_TMP/sentinel"
printf 'bind 127.0.0.1\nport %s\ndaemonize no\ndir %s\nsentinel monitor mymaster 127.0.0.1 %s 1\nsentinel auth-pass mymaster %s\nrequirepass "%s"\n' \
    "$SP" "$TLSC_TMP/sentinel" "$DM" "$PW" "$SPW" >"$TLSC_TMP/sentinel/sentinel.conf"
redis-sentinel "$TLSC_TMP/sentinel/sentinel.conf" >"$TLSC_TMP/sentinel/log" 2>&1 &
track $!
wait_port "$SP" 10 || exit 1
redis-cli -p "$DM" --pass "$PW" --no-auth-warning hset "tlscache:sess:$(printf 'ab%.0s' {1..32})" sni s.example node S >/dev/null

# fake_sentinel PORT HEX: a "sentinel" that answers every command with the RESP bytes HEX.
fake_sentinel() {
    python3 - "$1" "$2" <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        if c.recv(4096):
            c.sendall(bytes.fromhex(sys.argv[2]))
    except OSError:
        pass
    c.close()
EOF
    track $!
    wait_port "$1" 10
}
DEAD=$(free_port)
SURL="redis-sentinel://127.0.0.1:$DEAD,127.0.0.1:$SP/mymaster"
ctl s1 sessions list --redis "$SURL" --redis-pass-file "$TLSC_TMP/redis.pass" \
    --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" >/dev/null
check "a sentinel URL finds the master (the dead first sentinel skipped) and lists its session" \
    [ "$?/$(grep -cE '^(ab){32} +none +- +- +s\.example +- +S ' "$O/s1")" = 0/1 ]
# The sentinel has its own requirepass: without it, one line saying the sentinel wants it.
ctl s0 sessions list --redis "$SURL" --redis-pass-file "$TLSC_TMP/redis.pass"
check "a sentinel with requirepass and no --redis-sentinel-pass-file: exit 1, NOAUTH on one line" \
    [ "$?/$(grep -c NOAUTH "$O/s0")/$(wc -l <"$O/s0")" = 1/1/1 ]
TLSCACHE_REDIS_SENTINEL_PASS=$SPW ctl s0e sessions list --redis "$SURL" --redis-pass-file "$TLSC_TMP/redis.pass" >/dev/null
check "the sentinels' password from TLSCACHE_REDIS_SENTINEL_PASS" [ "$?/$(grep -c s.example "$O/s0e")" = 0/1 ]
check "the sentinels' password never echoed" bash -c '! grep -q "own pw" "$@"' _ "$O/s0" "$O/s1" "$O/s0e"
# A sentinel naming the replica: ROLE says slave, and the ctl refuses it.
FR=$(free_port)
fake_sentinel "$FR" "$(printf '*2\r\n$9\r\n127.0.0.1\r\n$%s\r\n%s\r\n' "${#DR}" "$DR" | od -An -tx1 | tr -d ' \n')" || exit 1
ctl s2 stats --redis "redis-sentinel://127.0.0.1:$FR/mymaster" --redis-pass-file "$TLSC_TMP/redis.pass"
check "a sentinel naming a replica: exit 1, ROLE named, one line" [ "$?/$(grep -c 'is not the master (ROLE says slave)' "$O/s2")/$(wc -l <"$O/s2")" = 1/1/1 ]
# A hostile answer: a host with a space and a newline, and a port past 65535.
FH=$(free_port)
fake_sentinel "$FH" "$(printf '*2\r\n$9\r\nevil\nhost\r\n$5\r\n70000\r\n' | od -An -tx1 | tr -d ' \n')" || exit 1
ctl s3 stats --redis "redis-sentinel://127.0.0.1:$FH,127.0.0.1:$SP/mymaster" --redis-pass-file "$TLSC_TMP/redis.pass" \
    --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" >/dev/null
check "a hostile sentinel answer is skipped, the next sentinel asked" [ "$?/$(grep -c '^(cluster)' "$O/s3")" = 0/1 ]
ctl s4 stats --redis "redis-sentinel://127.0.0.1:$FH/mymaster" --redis-pass-file "$TLSC_TMP/redis.pass"
check "a hostile sentinel answer alone: exit 1, one line, nothing of it echoed" \
    [ "$?/$(grep -c 'not a host and a port' "$O/s4")/$(grep -c evil "$O/s4")/$(wc -l <"$O/s4")" = 1/1/0/1 ]
timeout 60 "$BENCH" --target "127.0.0.1:$PA" --connections 4 --redis "$SURL" --redis-pass-file "$TLSC_TMP/redis.pass" \
    --redis-sentinel-pass-file "$TLSC_TMP/sentinel.pass" --json "$O/bench-s.json" >"$O/bench-s.txt" 2>&1
check "bench --redis redis-sentinel:// reads the master (no error)" [ "$(jq -r '.server.error // "none"' "$O/bench-s.json")" = none ]
finish
