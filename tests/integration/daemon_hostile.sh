#!/usr/bin/env bash
# tlscache-daemon against a peer that holds the cluster secret (a compromised node), with the
# real daemon and tlscache-keyd-probe (issue 9, items 1-3):
#   - a HELLO reporting epoch 2^64-1 is refused and logged, and pushes stay fresh to workers;
#   - a push a worker finds stale is answered with ERROR, which the daemon logs;
#   - after a restart, offered keys outside the window's bounds are not adopted, the window
#     keeps its maximum and rotates, and the key set most addresses report wins over one
#     address that opens many links;
#   - ~1100 idle TCP connections do not keep a worker from its keys;
#   - the pre-authentication budget is set by --preauth-max / --preauth-per-addr /
#     --preauth-timeout (or TLSCACHE_DAEMON_PREAUTH_*), bounded, logged and applied.
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
chmod 600 "$S"
PORT=$(free_port)
SOCK=$TLSC_TMP/keyd.sock
LOG=$TLSC_TMP/daemon-1.log # one log per part, so a pattern cannot match an earlier part's line

# start_daemon FLAGS...: a daemon on $PORT and $SOCK; sets DAEMON_PID.
start_daemon() {
    "$DAEMON" --listen "127.0.0.1:$PORT" --unix "$SOCK" --secret-file "$S" --log-level debug "$@" 2>>"$LOG" &
    DAEMON_PID=$!
    track "$DAEMON_PID"
    wait_port "$PORT" 10
}
stop_daemon() {
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null
}
probe() { "$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" "$@"; }
current_of() { sed -n 's/.*current=\([0-9a-f]*\).*/\1/p' | tail -1; }
count_of() { sed -n 's/^keyset .*count=\([0-9]*\).*/\1/p' | tail -1; }
# serves_keys: the daemon hands out a window (its grace period is over); prints it.
serves_keys() { local o; o=$(probe --once --timeout-ms 2000); echo "$o"; [ -n "$(current_of <<<"$o")" ]; }
# applied_count FILE: how many windows a --hold probe applied.
applied_count() { grep -c '^applied' "$1"; }
applied_at_least() { echo "applied $(applied_count "$1")"; [ "$(applied_count "$1")" -ge "$2" ]; }
epoch_now() { echo $(($(date +%s) * 1000)); }

# ---- 0. a passphrase is not a cluster secret: the daemon refuses it with how to make one.
printf 'correct horse battery staple, and then some more words\n' >"$TLSC_TMP/pass"
chmod 600 "$TLSC_TMP/pass"
"$DAEMON" --listen "127.0.0.1:$PORT" --secret-file "$TLSC_TMP/pass" 2>"$TLSC_TMP/pass.err"
rc=$?
check "passphrase_secret_file_is_refused" test "$rc" -eq 1
check "refusal_is_one_line_saying_how_to_make_a_secret" bash -c \
    "test \$(wc -l <'$TLSC_TMP/pass.err') -eq 1 && grep -q 'head -c 32 /dev/urandom | od -An -tx1' '$TLSC_TMP/pass.err'"

# ---- 1. epochs: a huge reported epoch is refused, never wraps; a stale push is heard.
start_daemon --rotate 2 --grace-ms 300
"$PROBE" --connect "unix:$SOCK" --secret-file "$S" --hold 30 >"$TLSC_TMP/w1.out" 2>"$TLSC_TMP/w1.err" &
W1=$!
track "$W1"
check "worker_receives_window" wait_for 5 "the worker to apply a window" log_has "$TLSC_TMP/w1.out" '^applied'
check "daemon_announces_its_window_bounds" grep -q '^window rotate=2 lifetime=2 lead=1$' "$TLSC_TMP/w1.out"
# (This order matters on the code before the fix: the wrap to 0 came last, nothing undid it.)
FAR=$(($(epoch_now) + 2 * 86400000))
probe --once --timeout-ms 2000 --node evil --hello-epoch "$FAR" >"$TLSC_TMP/far.out"
check "hello_with_an_epoch_two_days_ahead_is_refused" grep -q '^error 6: .*epoch' "$TLSC_TMP/far.out"
check "epoch_far_ahead_is_logged" log_has "$LOG" "worker evil/0 reports epoch $FAR, more than a day ahead"
probe --once --timeout-ms 2000 --node evil --hello-epoch 18446744073709551615 >"$TLSC_TMP/huge.out"
check "hello_with_epoch_2e64_is_refused_with_an_error" grep -q '^error 6: .*epoch' "$TLSC_TMP/huge.out"
n0=$(applied_count "$TLSC_TMP/w1.out")
check "rotation_still_reaches_the_worker" wait_for 8 "two more windows applied" applied_at_least "$TLSC_TMP/w1.out" $((n0 + 2))
e_first=$(sed -n 's/^applied epoch=\([0-9]*\).*/\1/p' "$TLSC_TMP/w1.out" | head -1)
e_last=$(sed -n 's/^applied epoch=\([0-9]*\).*/\1/p' "$TLSC_TMP/w1.out" | tail -1)
check "epoch_never_wraps" test "${e_last:-0}" -gt "${e_first:-0}"
check "no_push_was_refused_by_the_worker" bash -c "! grep -q '^refused' '$TLSC_TMP/w1.out'"

# A worker that applied a later epoch than the daemon knows of refuses the push out loud.
"$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" --node stale --hold 4 --hide-epoch $(($(epoch_now) + 3600000)) \
    >"$TLSC_TMP/stale.out" 2>"$TLSC_TMP/stale.err"
check "stale_push_is_an_error_the_daemon_logs" log_has "$LOG" 'worker stale/1 refused our key set \(epoch [0-9]+\) as stale'
check "stale_push_is_logged_by_the_worker" log_has "$TLSC_TMP/stale.err" 'is below the epoch this worker applied'
check "stale_push_is_not_acked_as_applied" bash -c "! grep -q '^applied' '$TLSC_TMP/stale.out'"
kill -TERM "$W1"
stop_daemon

# ---- 2. restart adoption: bounds, the window's maximum, the majority.
LOG=$TLSC_TMP/daemon-2.log
# Keys valid until 2^62, offered by one HELLO during the grace period: none adopted.
start_daemon --rotate 2 --grace-ms 1500
probe --once --timeout-ms 500 --node evil --offer-keys 64 --offer-not-after 4611686018427387904 >/dev/null
check "poisoned_keys_are_refused_and_logged" wait_for 5 "the refusal" log_has "$LOG" 'offered 64 keys outside the window.s bounds'
check "daemon_serves_after_the_grace_period" wait_for 6 "a window" serves_keys
w=$(probe --once --timeout-ms 2000)
check "no_poisoned_key_in_the_window" test "$(count_of <<<"$w")" -le 5
first=$(current_of <<<"$w")
# rotates: the current key is no longer $first.
rotates() { local o; o=$(probe --once --timeout-ms 2000); echo "$o"; [ -n "$(current_of <<<"$o")" ] && [ "$(current_of <<<"$o")" != "$first" ]; }
check "rotation_proceeds_after_a_poisoned_offer" wait_for 8 "the current key to change" rotates
stop_daemon

# 64 keys inside the bounds: adopted up to the window's maximum (10 / 10 + 4 = 5 with a next key).
LOG=$TLSC_TMP/daemon-3.log
start_daemon --rotate 10 --grace-ms 1000
probe --once --timeout-ms 500 --node many --offer-keys 64 --offer-spread 0 --offer-life 20 >/dev/null
check "daemon_serves_after_adopting" wait_for 6 "a window" serves_keys
w=$(probe --once --timeout-ms 2000)
check "adopted_window_is_capped_at_its_maximum" test "$(count_of <<<"$w")" -le 5
check "capped_adoption_is_logged" log_has "$LOG" 'adopted 4 keys'
stop_daemon

# Two honest workers (over TCP from 127.0.0.1 and over the Unix socket: two addresses) against
# three links from 127.0.0.2 that offer another key set with a higher epoch.
start_daemon --rotate 60 --grace-ms 300
"$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" --node honest-a --hold 30 >"$TLSC_TMP/ha.out" 2>/dev/null &
HA=$!
track "$HA"
"$PROBE" --connect "unix:$SOCK" --secret-file "$S" --node honest-b --hold 30 >"$TLSC_TMP/hb.out" 2>/dev/null &
HB=$!
track "$HB"
check "honest_workers_receive_the_window" wait_for 5 "both to apply" bash -c "grep -q ^applied '$TLSC_TMP/ha.out' && grep -q ^applied '$TLSC_TMP/hb.out'"
CUR=$(current_of <"$TLSC_TMP/ha.out")
EH=$(sed -n 's/^applied epoch=\([0-9]*\).*/\1/p' "$TLSC_TMP/ha.out" | tail -1)
stop_daemon
LOG=$TLSC_TMP/daemon-4.log
start_daemon --rotate 60 --grace-ms 2500
EVIL=()
for i in 1 2 3; do
    probe --once --timeout-ms 1500 --bind 127.0.0.2 --node "evil$i" --offer-keys 2 --offer-life 120 \
        --hello-epoch $((EH + 1000)) >/dev/null &
    EVIL+=($!)
    track "$!"
done
check "daemon_serves_after_the_restart" wait_for 8 "a window" serves_keys
after=$(probe --once --timeout-ms 2000)
check "majority_key_set_is_adopted_over_one_address_with_many_links" test "$(current_of <<<"$after")" = "$CUR"
check "adoption_names_its_witnesses" log_has "$LOG" 'adopted 2 keys \(epoch [0-9]+\) reported by 2 addresses'
check "the_other_key_set_is_logged_with_its_address" log_has "$LOG" 'not adopted: .*first 127\.0\.0\.2'
wait "${EVIL[@]}" 2>/dev/null
kill -TERM "$HA" "$HB"

# ---- 3. a flood of idle TCP connections, while workers connect and reconnect.
"$PROBE" --connect "127.0.0.1:$PORT" --secret-file "$S" --node flooded --hold 40 >"$TLSC_TMP/fw.out" 2>/dev/null &
FW=$!
track "$FW"
check "worker_applies_before_the_flood" wait_for 5 "a window" log_has "$TLSC_TMP/fw.out" '^applied'
# start_flood NAME [N]: a python process that opens N (1100) idle connections to 127.0.0.1:$PORT and
# keeps them open (re-opening closed ones at up to 200 a second) for 30 s, at most 30000
# connects in all, and writes how many connections it has established to $TLSC_TMP/NAME.count;
# sets FLOOD (its PID).
start_flood() {
    python3 - "$PORT" "${2:-1100}" 30 "$TLSC_TMP/$1.count" <<'PY' &
import os, selectors, socket, sys, time
port, n, secs, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
sel = selectors.DefaultSelector()
made, up, end, budget, last = 0, 0, time.time() + secs, n, time.time()
while time.time() < end and made < 30000:
    while len(sel.get_map()) < n and budget >= 1:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)
        made += 1
        budget -= 1
    for key, ev in sel.select(timeout=0.1):
        s, data = key.fileobj, b""
        if key.events == selectors.EVENT_WRITE:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                up += 1
                sel.modify(s, selectors.EVENT_READ)
                continue
        else:
            try:
                data = s.recv(4096)
            except OSError:
                pass
        if not data:
            sel.unregister(s)
            s.close()
    now = time.time()
    budget = min(budget + 200 * (now - last), 200)  # re-opens: 200 a second at most
    last = now
    with open(out + ".tmp", "w") as f:
        f.write(str(up))
    os.replace(out + ".tmp", out)
PY
    FLOOD=$!
    track "$FLOOD"
}
# flooded NAME [N]: flood NAME has established N (1100) connections.
flooded() { local c; c=$(cat "$TLSC_TMP/$1.count" 2>/dev/null); echo "established: ${c:-0}"; [ "${c:-0}" -ge "${2:-1100}" ]; }
start_flood flood1
check "flood_is_running" wait_for 10 "1100 idle connections" flooded flood1
# fresh_probe: a fresh worker connects during the flood and gets a window (kept in fresh.out).
# A worker retries with backoff; so does this check, bounded, on a loaded machine.
fresh_probe() { probe --once --timeout-ms 3000 >"$TLSC_TMP/fresh.out" 2>&1; tr "\n" " " <"$TLSC_TMP/fresh.out"; [ -n "$(current_of <"$TLSC_TMP/fresh.out")" ]; }
check "fresh_worker_gets_keys_during_the_flood" wait_for 20 "a window for a fresh worker" fresh_probe
fresh=$(cat "$TLSC_TMP/fresh.out"); echo "# fresh: $(tr "\n" " " <<<"$fresh")"
check "flood_links_are_dropped_to_make_room" log_has "$LOG" 'unauthenticated links .*dropped one from 127\.0\.0\.1'
kill -TERM "$FLOOD"
# The daemon restarts, a new flood fills it, and only then the worker comes back, inside the
# grace period: its keys must still be heard and adopted.
n0=$(applied_count "$TLSC_TMP/fw.out")
kill -STOP "$FW"
stop_daemon
LOG=$TLSC_TMP/daemon-5.log
start_daemon --rotate 60 --grace-ms 6000
start_flood flood2
check "flood_fills_the_restarted_daemon" wait_for 10 "1100 idle connections" flooded flood2
kill -CONT "$FW"
check "worker_reconnects_through_the_flood_and_applies" wait_for 10 "a window from the restarted daemon" \
    applied_at_least "$TLSC_TMP/fw.out" $((n0 + 1))
check "its_keys_are_adopted_during_the_flood" log_has "$LOG" 'adopted 2 keys'
check "restarted_daemon_serves_the_flooded_workers_key" test "$(current_of <"$TLSC_TMP/fw.out")" = "$(current_of <<<"$fresh")"
check "daemon_lives_through_the_flood" kill -0 "$DAEMON_PID"
kill -TERM "$FLOOD" "$FW" 2>/dev/null
stop_daemon

# ---- 4. the pre-authentication budget: flags (and env), bounded, logged, applied. (A daemon
# that took a refused value would run: `timeout` bounds each, and its 124 fails the check.)
timeout 10 "$DAEMON" --listen "127.0.0.1:$PORT" --secret-file "$S" --preauth-max 4 --preauth-per-addr 5 2>"$TLSC_TMP/pa.err"
check "preauth_per_addr_above_preauth_max_is_refused (a usage error, 2)" test $? -eq 2
check "the_refusal_names_the_flag" grep -q -- '--preauth-per-addr.*--preauth-max 4' "$TLSC_TMP/pa.err"
timeout 10 "$DAEMON" --listen "127.0.0.1:$PORT" --secret-file "$S" --preauth-timeout 61 2>"$TLSC_TMP/pt.err"
check "preauth_timeout_is_bounded" test $? -eq 2
TLSCACHE_DAEMON_PREAUTH_MAX=0 timeout 10 "$DAEMON" --listen "127.0.0.1:$PORT" --secret-file "$S" 2>"$TLSC_TMP/pm.err"
check "preauth_max_from_the_environment_is_bounded_too" test $? -eq 2
LOG=$TLSC_TMP/daemon-6.log
TLSCACHE_DAEMON_PREAUTH_TIMEOUT=1 start_daemon --rotate 60 --grace-ms 300 --preauth-max 6 --preauth-per-addr 3
check "the_budget_is_logged_at_start" log_has "$LOG" 'unauthenticated links: at most 6, 3 per address, 1s each'
# idle_links N SECS: N idle connections from 127.0.0.1 held for at most SECS; prints how many
# the daemon closed.
idle_links() {
    python3 - "$PORT" "$1" "$2" <<'PY'
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = [socket.create_connection(("127.0.0.1", port), timeout=secs) for _ in range(n)]
closed, end = 0, time.time() + secs
for s in socks:
    s.settimeout(max(0.05, end - time.time()))
    try:
        closed += s.recv(1) == b""
    except OSError:
        pass
print(closed)
PY
}
closed=$(idle_links 5 10)
check "idle_links_beyond_the_budget_are_all_dropped (closed: $closed of 5)" test "$closed" = 5
check "the_per_address_limit_of_3_applies" log_has "$LOG" 'unauthenticated links \(max 6, 3 per address\): dropped one from 127\.0\.0\.1'
check "the_1s_deadline_applies" log_has "$LOG" 'no handshake/HELLO in time'
start_flood flood3 300
check "small_budget_flood_is_running" wait_for 10 "300 idle connections" flooded flood3 300
check "fresh_worker_gets_keys_through_a_small_budget" wait_for 20 "a window for a fresh worker" fresh_probe
kill -TERM "$FLOOD" 2>/dev/null
check "daemon_lives_through_the_small_budget_flood" kill -0 "$DAEMON_PID"
check "no_key_bytes_in_daemon_logs" bash -c "! grep -qiE '[0-9a-f]{32}' '$TLSC_TMP'/daemon-*.log"

finish
