#!/usr/bin/env bash
# Faults: Redis stopped, paused and restarted under a bounded load (every handshake completes,
# resumption comes back), a worker SIGKILLed (respawned, the node keeps resuming), the whole
# server restarted (old sessions still resume), garbage in Redis (full handshake, counted),
# SIGHUP reload and SIGTERM drain.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3
# Redis is stopped and paused on purpose here: lookups and stores get generous timeouts so
# that "every handshake completes" and "resumption comes back" are about the faults, not about
# a sanitizer build missing 10 ms. server_resume.sh and bench_server_stats.sh run the defaults.
export GENEROUS_TIMEOUTS=1
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
PA=$(free_port)
PB=$(free_port)
start_node A "$PA" || exit 1
start_node B "$PB" || exit 1
S=$TLSC_TMP/sess

# load N: N sequential handshakes alternating nodes, each offering the last session. Prints
# "completed resumed".
load() {
    local n=$1 done=0 resumed=0 i r port in=""
    rm -f "$S.load"
    for ((i = 0; i < n; i++)); do
        port=$PA; ((i % 2)) && port=$PB
        [ -s "$S.load" ] && in=$S.load
        if r=$(sget "$port" 1.2 a.example "$in" "$S.load.new"); then
            done=$((done + 1))
            [ "$(jfield "$r" resumed)" = true ] && resumed=$((resumed + 1))
            [ -s "$S.load.new" ] && mv "$S.load.new" "$S.load"
        fi
    done
    echo "$done $resumed"
}

# a_resumes_on_b: a fresh session made on A resumes on B; prints B's reply.
a_resumes_on_b() {
    local r
    rm -f "$S.u"
    sget "$PA" 1.2 a.example "" "$S.u" >/dev/null
    r=$(sget "$PB" 1.2 a.example "$S.u" "")
    echo "B replied: ${r:-nothing}"
    [ "$(jfield "$r" resumed)" = true ]
}
# until_resumed: waits (bounded, 15 s) until a fresh session made on A resumes on B.
until_resumed() { wait_for 15 "a session made on A to resume on B" a_resumes_on_b; }

# failed_lookups_counted: the stats count lookups that timed out, failed or were skipped.
failed_lookups_counted() {
    local t e k
    t=$(redis_stat lookups_timeout) e=$(redis_stat lookups_error) k=$(redis_stat lookups_skipped)
    echo "lookups_timeout=$t lookups_error=$e lookups_skipped=$k"
    [ $((t + e + k)) -gt 0 ]
}

# respawned: node A has 2 workers again, none of them the victim.
respawned() {
    local pids
    pids=$(worker_pids "$NODE_PID_A" | grep -vx "$victim" | tr '\n' ' ')
    echo "workers other than $victim: ${pids:-none}"
    [ "$(wc -w <<<"$pids")" = 2 ]
}

read -r d r <<<"$(load 10)"
check "baseline: 10/10 handshakes, 9 resumed ($d/$r)" [ "$d/$r" = 10/9 ]

# --- Redis paused with SIGSTOP ---------------------------------------------------------------
kill -STOP "$REDIS_PID"
read -r d r <<<"$(load 12)"
check "redis paused: every handshake completes ($d/12)" [ "$d" = 12 ]
kill -CONT "$REDIS_PID"
check "redis resumed: resumption comes back" until_resumed

# --- Redis stopped, then restarted on the same port ---------------------------------------------
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
read -r d r <<<"$(load 12)"
check "redis down: every handshake completes ($d/12), none resumed ($r)" [ "$d/$r" = 12/0 ]
start_redis "$REDIS_PORT" || exit 1
check "redis restarted: resumption comes back by itself" until_resumed
check "lookups that failed were counted (timeout+error+skipped > 0)" \
    wait_for 5 "failed lookups in the stats" failed_lookups_counted

# --- garbage and truncated records -------------------------------------------------------------
plant() { # plant VALUE-HEX: makes a session on A, overwrites its der field, offers it to B
    sget "$PA" 1.2 a.example "" "$S.g" >/dev/null
    local id
    id=$(openssl sess_id -in "$S.g" -noout -text | awk '/Session-ID:/{print tolower($2)}')
    if [ "$1" = truncate ]; then
        local full
        full=$(python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" --hex HGET "tlscache:sess:$id" der | tr -d '"')
        python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" HSET "tlscache:sess:$id" der "hex:${full:0:$((${#full} / 4 * 2))}" >/dev/null
    elif [ "$1" = wrongtype ]; then
        redis-cli -p "$REDIS_PORT" del "tlscache:sess:$id" >/dev/null
        redis-cli -p "$REDIS_PORT" rpush "tlscache:sess:$id" x >/dev/null
    else
        python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" HSET "tlscache:sess:$id" der "hex:$1" >/dev/null
    fi
    sget "$PB" 1.2 a.example "$S.g" ""
}
bad0=$(redis_stat records_bad)
for case in 00 50 5030820001 "$(head -c 3000 /dev/urandom | od -An -tx1 | tr -d ' \n')" truncate wrongtype; do
    r=$(plant "$case")
    check "garbage record (${case:0:12}): full handshake, no crash" [ "$(jfield "$r" resumed)" = false ]
done
check "bad records were counted" wait_for 5 "records_bad > $bad0" redis_stat_ge records_bad $((bad0 + 1))
check "node B still has all its workers after garbage" [ "$(worker_pids "$NODE_PID_B" | wc -l)" = 2 ]

# --- a worker killed with SIGKILL ------------------------------------------------------------------
victim=$(worker_pids "$NODE_PID_A" | head -1)
kill -KILL "$victim"
check "killed worker was respawned" wait_for 10 "a new worker on node A" respawned
check "respawn was logged" log_has "$TLSC_TMP/A.log" "exited on signal 9; respawning"
read -r d r <<<"$(load 10)"
check "after the respawn: 10/10 handshakes, 9 resumed ($d/$r)" [ "$d/$r" = 10/9 ]

# --- the whole server restarted ----------------------------------------------------------------------
sget "$PA" 1.2 a.example "" "$S.before12" >/dev/null
sget "$PA" 1.3 a.example "" "$S.before13" >/dev/null
check "SIGTERM: node A stops within 15 s" stop_pid "$NODE_PID_A"
check "SIGTERM: node B stops within 15 s" stop_pid "$NODE_PID_B"
check "SIGTERM: the master logged a clean stop" grep -q "all workers stopped" "$TLSC_TMP/A.log"
start_node A "$PA" || exit 1
start_node B "$PB" || exit 1
r=$(sget "$PB" 1.2 a.example "$S.before12" "")
check "tls1.2 session made before a full restart resumes after it" [ "$(jfield "$r" resumed)" = true ]
r=$(sget "$PA" 1.3 a.example "$S.before13" "")
check "tls1.3 ticket made before a full restart resumes after it" [ "$(jfield "$r" resumed)" = true ]

# --- SIGHUP reloads certificates; sessions survive --------------------------------------------------
sget "$PA" 1.2 a.example "" "$S.hup" >/dev/null
kill -HUP "$NODE_PID_A"
check "SIGHUP: reload logged" wait_for 10 "the reload in A.log" log_has "$TLSC_TMP/A.log" "certificates reloaded"
r=$(sget "$PA" 1.2 a.example "$S.hup" "")
check "SIGHUP: sessions still resume after reload" [ "$(jfield "$r" resumed)" = true ]
check "SIGHUP: master still running" kill -0 "$NODE_PID_A"

finish
