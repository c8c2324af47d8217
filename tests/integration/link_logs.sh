#!/usr/bin/env bash
# This file's one job: prove that every link of a worker says when it goes down or comes up.
# A key daemon nobody listens for is logged (address and reason) within seconds, once, not per
# attempt; the daemon coming up, dying and coming back is logged as connected / lost /
# connected again; a wrong cluster secret is an error naming --keyd-secret-file. A Redis with
# another password is an error naming WRONGPASS and --redis; a db Redis does not have names
# the db; a Redis killed and restarted is logged down once and up once ("connected again"
# only after a first connect).
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
need redis-server redis-cli openssl
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" >/dev/null || exit 1
SERVER=$TLSC_BIN/server/tlscache-server
DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
for b in "$SERVER" "$DAEMON"; do
    [ -x "$b" ] || { echo "missing $b (build first; TLSC_BIN=$TLSC_BIN)"; exit 1; }
done
SECRET=$TLSC_TMP/cluster.secret
WRONG=$TLSC_TMP/wrong.secret
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WRONG"
chmod 600 "$SECRET" "$WRONG"

# server NAME REDIS_URL [flags...]: one node with one worker, logs in $TLSC_TMP/NAME.log;
# sets SPID_<NAME>. It does not wait for the port: a node whose links are down still starts.
server() {
    local name=$1 url=$2
    shift 2
    "$SERVER" --listen "127.0.0.1:$(free_port)" --workers 1 --node "$name" --cluster test \
        --cert "$TLSC_TMP/pki/default.pem" --key "$TLSC_TMP/pki/default.key" \
        --redis "$url" --log-level "${LOG_LEVEL:-info}" "$@" >>"$TLSC_TMP/$name.log" 2>&1 &
    track $!
    printf -v "SPID_$name" '%s' $!
}
# daemon PORT SECRET: a key daemon on 127.0.0.1:PORT; sets DPID.
daemon() {
    "$DAEMON" --listen "127.0.0.1:$1" --secret-file "$2" --grace-ms 200 >>"$TLSC_TMP/daemon.log" 2>&1 &
    DPID=$!
    track "$DPID"
    wait_port "$1" 10
}
# count_is FILE PATTERN N: FILE has exactly N lines matching PATTERN (grep -E); prints them.
count_is() {
    local n
    n=$(grep -cE "$2" "$1")
    grep -E "$2" "$1"
    echo "count $n, want $3"
    [ "$n" -eq "$3" ]
}
# no_line FILE PATTERN: FILE has no line matching PATTERN.
no_line() { ! grep -E "$2" "$1"; }

start_redis || exit 1
REDIS="redis://127.0.0.1:$REDIS_PORT"

# --- the key daemon's link -------------------------------------------------------------
KD=$(free_port)
KL=$TLSC_TMP/K.log
LOG_LEVEL=debug server K "$REDIS" --resumption both --keyd "127.0.0.1:$KD" --keyd-secret-file "$SECRET"
check "unreachable_daemon_is_logged_with_address_and_reason" \
    wait_for 10 "the down daemon link in the log" log_has "$KL" "warn: keyd 127\.0\.0\.1:$KD: cannot connect: connection refused"
# Several attempts later (debug lines say each one), the warning is still there once.
check "unreachable_daemon_is_retried" \
    wait_for 15 "a third failed attempt" log_has "$KL" "debug: keyd 127\.0\.0\.1:$KD: attempt [3-9] failed"
check "unreachable_daemon_is_logged_once_not_per_attempt" count_is "$KL" "warn: keyd .*cannot connect" 1

daemon "$KD" "$SECRET"
check "daemon_coming_up_is_logged_as_connected_after_failed_attempts" \
    wait_for 15 "the daemon link up" log_has "$KL" "info: keyd 127\.0\.0\.1:$KD: connected after [0-9]+ failed attempts?$"
check "first_daemon_connect_is_not_called_again" no_line "$KL" "keyd .*connected again"

kill -KILL "$DPID"
check "daemon_killed_is_logged_as_link_lost" \
    wait_for 10 "the daemon link lost" log_has "$KL" "warn: keyd 127\.0\.0\.1:$KD: connection lost: "
daemon "$KD" "$SECRET"
check "daemon_back_is_logged_as_connected_again" \
    wait_for 15 "the daemon link up again" log_has "$KL" "info: keyd 127\.0\.0\.1:$KD: connected again"
check "daemon_restart_is_logged_down_once_and_up_once" \
    bash -c "$(declare -f count_is); count_is '$KL' 'warn: keyd .*(connection lost|cannot connect)' 2 && count_is '$KL' 'keyd .*connected again' 1"

# A node with another cluster secret: an error that names the flag, once.
WL=$TLSC_TMP/W.log
server W "$REDIS" --resumption both --keyd "127.0.0.1:$KD" --keyd-secret-file "$WRONG"
check "wrong_cluster_secret_is_an_error_naming_the_flag" \
    wait_for 10 "the secret error" log_has "$WL" "error: keyd 127\.0\.0\.1:$KD: TLS handshake failed: is --keyd-secret-file the daemon's --secret-file\?"

# --- Redis ---------------------------------------------------------------------------------
# Another password: WRONGPASS and what to fix, at error level; never "connected".
redis-cli -p "$REDIS_PORT" config set requirepass right >/dev/null
PL=$TLSC_TMP/P.log
(umask 077 && echo wrong >"$TLSC_TMP/redis.pass")
server P "redis://127.0.0.1:$REDIS_PORT" --redis-pass-file "$TLSC_TMP/redis.pass"
check "wrong_redis_password_is_an_error_naming_wrongpass_and_the_flag" \
    wait_for 10 "the WRONGPASS error" log_has "$PL" "error: redis 127\.0\.0\.1:$REDIS_PORT/0: AUTH refused: WRONGPASS.*--redis-pass-file"
check "wrong_redis_password_is_never_connected" no_line "$PL" "redis .*: connected"
check "wrong_redis_password_never_shows_in_the_log" no_line "$PL" "wrong@|right"
redis-cli -p "$REDIS_PORT" -a right --no-auth-warning config set requirepass '' >/dev/null

# A db this Redis does not have (16 by default): the error names the db in --redis.
DL=$TLSC_TMP/D.log
server D "redis://127.0.0.1:$REDIS_PORT/99"
check "redis_db_out_of_range_is_an_error_naming_the_db_in_the_flag" \
    wait_for 10 "the SELECT error" log_has "$DL" "error: redis 127\.0\.0\.1:$REDIS_PORT/99: SELECT refused: .*DB index.*--redis"

# Killed and restarted: down once, up once, and the first connect was just "connected".
RL=$TLSC_TMP/R.log
server R "$REDIS"
check "first_redis_connect_is_logged_as_connected" \
    wait_for 10 "the first connect" log_has "$RL" "info: redis 127\.0\.0\.1:$REDIS_PORT/0: connected$"
kill -KILL "$REDIS_PID"
check "redis_killed_is_logged_as_link_lost" \
    wait_for 10 "the Redis link lost" log_has "$RL" "warn: redis 127\.0\.0\.1:$REDIS_PORT/0: connection lost"
start_redis "$REDIS_PORT" || exit 1
check "redis_back_is_logged_as_connected_again" \
    wait_for 15 "the Redis link up again" log_has "$RL" "info: redis 127\.0\.0\.1:$REDIS_PORT/0: connected again"
check "redis_restart_is_logged_down_once_and_up_once" \
    bash -c "$(declare -f count_is); count_is '$RL' 'warn: redis .*(connection lost|cannot connect)' 1 && count_is '$RL' 'redis .*connected again' 1"

# A Redis that is not there at start: "cannot connect", then "connected after", never "again".
NL=$TLSC_TMP/N.log
NP=$(free_port)
server N "redis://127.0.0.1:$NP"
check "unreachable_redis_at_start_is_logged" \
    wait_for 10 "the down Redis link" log_has "$NL" "warn: redis 127\.0\.0\.1:$NP/0: cannot connect: connection refused"
start_redis "$NP" || exit 1
check "redis_up_after_a_failed_start_is_connected_not_again" \
    wait_for 15 "the Redis link up" log_has "$NL" "info: redis 127\.0\.0\.1:$NP/0: connected after [0-9]+ failed attempts?$"

finish
