#!/usr/bin/env bash
# tlscache-daemon's link, end to end with the real daemon and tlscache-keyd-probe:
# PSK authentication, hostile peers, rotation, and a SIGKILL + restart that keeps the keys.
. "$(dirname "$0")/../lib/common.sh"
need python3

DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
PROBE=$TLSC_BIN/cache-daemon/tlscache-keyd-probe
for b in "$DAEMON" "$PROBE"; do
    [ -x "$b" ] || { echo "missing $b (build first; TLSC_BIN=$TLSC_BIN)"; exit 1; }
done

tlsc_tmpdir
trap cleanup EXIT
S=$TLSC_TMP/secret
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TLSC_TMP/wrong"
chmod 600 "$S" "$TLSC_TMP/wrong" # secret files others can read are refused
PORT=$(free_port)
SOCK=$TLSC_TMP/keyd.sock
LOG=$TLSC_TMP/daemon.log

# start_daemon ROTATE: a daemon on $PORT and $SOCK; sets DAEMON_PID.
start_daemon() {
    "$DAEMON" --listen "127.0.0.1:$PORT" --unix "$SOCK" --secret-file "$S" --rotate "$1" --ticket-lifetime "$1" \
        --grace-ms 1500 --log-level debug 2>>"$LOG" &
    DAEMON_PID=$!
    track "$DAEMON_PID"
    wait_port "$PORT" 10
}

probe() { "$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" --timeout-ms 5000 "$@"; }
quiet() { "$@" >/dev/null; }
current_of() { sed -n 's/.*current=\([0-9a-f]*\).*/\1/p' | tail -1; }

start_daemon 60

out=$(probe --once)
check "peer_with_secret_gets_keyset_over_tcp" grep -q '^keyset epoch=[0-9]* count=2 current=[0-9a-f]\{8\}' <<<"$out"
CUR=$(current_of <<<"$out")
out_unix=$("$PROBE" --connect "unix:$SOCK" --secret-file "$S" --once)
check "unix_socket_serves_the_same_window" test "$(current_of <<<"$out_unix")" = "$CUR"
"$PROBE" --connect "unix:$SOCK" --secret-file "$S" --hold 2 >"$TLSC_TMP/hold-unix.out" 2>/dev/null
check "worker_client_over_unix_socket_applies_window" grep -q "^applied .*current=$CUR" "$TLSC_TMP/hold-unix.out"
check "unix_socket_is_private" test "$(stat -c %a "$SOCK")" = 600

"$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$TLSC_TMP/wrong" --once >"$TLSC_TMP/wrong.out"
rc=$?
check "peer_with_wrong_secret_gets_no_keys" test "$rc" -eq 2
check "peer_with_wrong_secret_sees_no_keyset" bash -c "! grep -q keyset '$TLSC_TMP/wrong.out'"
check "wrong_secret_is_logged" grep -q 'TLS handshake failed' "$LOG"

check "garbage_instead_of_tls_is_dropped" quiet probe --garbage
check "oversized_frame_is_dropped" quiet probe --oversize
check "unknown_frame_type_is_dropped" quiet probe --bad-frame
check "daemon_lives_after_hostile_peers" bash -c "kill -0 $DAEMON_PID && '$PROBE' --connect 127.0.0.1:$PORT --secret-file '$S' --once | grep -q current=$CUR"

# A worker holds the window; the daemon dies without a chance to clean up and comes back empty.
"$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" --hold 14 >"$TLSC_TMP/hold.out" 2>"$TLSC_TMP/hold.err" &
HOLD_PID=$!
track "$HOLD_PID"
check "worker_receives_window" wait_for 5 "the probe to apply the window" log_has "$TLSC_TMP/hold.out" "^applied .*current=$CUR"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
start_daemon 60
# applied_twice: the probe applied a second window (from the restarted daemon).
applied_twice() { cat "$TLSC_TMP/hold.out"; [ "$(grep -c '^applied' "$TLSC_TMP/hold.out")" -ge 2 ]; }
check "reconnecting_worker_applies_the_restarted_daemons_window" wait_for 6 "a second window applied" applied_twice
check "daemon_restart_adopts_keys_from_reconnecting_worker" log_has "$LOG" 'adopted 2 keys' 
after=$(probe --once)
check "restarted_daemon_serves_the_old_current_key" test "$(current_of <<<"$after")" = "$CUR"
e1=$(sed -n '1s/.*epoch=\([0-9]*\).*/\1/p' "$TLSC_TMP/hold.out")
e2=$(sed -n 's/^applied epoch=\([0-9]*\).*/\1/p' "$TLSC_TMP/hold.out" | tail -1)
check "epoch_grows_across_the_restart" test "${e2:-0}" -gt "${e1:-0}"
kill -TERM "$HOLD_PID" 2>/dev/null

# With nobody to learn from, a restarted daemon makes fresh keys.
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
start_daemon 2
# serves_keys: the daemon hands out a key set with a current key (after its grace period).
serves_keys() { fresh=$(probe --once); echo "$fresh"; [ -n "$(current_of <<<"$fresh")" ]; }
check "restarted_daemon_serves_keys_after_its_grace_period" wait_for 10 "a key set from the restarted daemon" serves_keys
fresh=$(probe --once)
check "restart_without_workers_makes_fresh_keys" bash -c "test -n '$(current_of <<<"$fresh")' && test '$(current_of <<<"$fresh")' != '$CUR'"

# Short rotation: a worker sees the current key change, and every key it was pushed arrives
# as next before it becomes current.
"$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" --hold 6 >"$TLSC_TMP/rot.out" 2>/dev/null
currents=$(sed -n 's/.*current=\([0-9a-f]*\).*/\1/p' "$TLSC_TMP/rot.out" | sort -u | wc -l)
check "short_rotation_changes_current_key" test "$currents" -ge 2
prenotified=1
first=1
while read -r line; do
    c=$(sed -n 's/.*current=\([0-9a-f]*\).*/\1/p' <<<"$line")
    if [ $first -eq 0 ] && ! grep -q "keys=.* $c" <<<"$prev"; then prenotified=0; fi
    first=0
    prev=$line
done < <(grep "^applied" "$TLSC_TMP/rot.out") # "window ..." lines (protocol 2) are not key sets
check "every_current_key_was_held_before_it_encrypted" test $prenotified -eq 1
# Every text flag from the environment (as a systemd EnvironmentFile gives them): the values
# must outlive the parse (they were used after free once; ASan in build-asan reports that).
kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null
ENV_PORT=$(free_port)
TLSCACHE_DAEMON_LISTEN=127.0.0.1:$ENV_PORT TLSCACHE_DAEMON_UNIX=$TLSC_TMP/env.sock TLSCACHE_DAEMON_SECRET_FILE=$S \
    TLSCACHE_DAEMON_NODE=env-node "$DAEMON" 2>>"$TLSC_TMP/env.log" &
ENV_PID=$!
track "$ENV_PID"
wait_port "$ENV_PORT" 10
check "daemon_configured_from_environment_serves_keys" bash -c "'$PROBE' --connect 127.0.0.1:$ENV_PORT --secret-file '$S' --once | grep -q '^keyset'"
check "daemon_from_environment_uses_its_node_name" grep -q 'env-node' "$TLSC_TMP/env.log"
kill "$ENV_PID" 2>/dev/null; wait "$ENV_PID" 2>/dev/null

check "no_key_bytes_in_daemon_log" bash -c "! grep -qiE '[0-9a-f]{32}' '$LOG'"

finish
