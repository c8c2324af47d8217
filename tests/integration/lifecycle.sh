#!/usr/bin/env bash
# Process life: SIGTERM and SIGINT stop a node cleanly in every --resumption mode, with and
# without the daemon and Redis (no abort, no sanitizer report, exit 0, no worker exiting
# abnormally); a worker that crashes while the node stops makes the master exit non-zero and
# say so; a second node on a port already served is refused with one line, unless
# --reuseport-share asks for sharing; a restart right after a stop binds again.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
SECRET=$TLSC_TMP/cluster.secret
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET"
chmod 600 "$SECRET"
DPORT=$(free_port)
"$DAEMON" --listen "127.0.0.1:$DPORT" --secret-file "$SECRET" --node d >>"$TLSC_TMP/daemon.log" 2>&1 &
track $!
wait_port "$DPORT" 10 || exit 1
DEAD_PORT=$(free_port) # nothing listens here: "Redis down" / "daemon down"

# exits_within SECS PID: waits (bounded) for PID, a child of this shell, to end; sets status
# to "exit status N", or to "" when it is still running.
exits_within() {
    local secs=$1 pid=$2
    status=""
    wait_for "$secs" "pid $pid to exit" bash -c "! kill -0 $pid 2>/dev/null" || return 1
    wait "$pid"
    status="exit status $?"
}

# stop_case NAME SIGNAL FLAGS...: starts a node with FLAGS, makes one request, sends SIGNAL to
# the master and checks it exits 0 with no abnormal worker exit and no sanitizer report.
stop_case() {
    local name=$1 sig=$2 port
    shift 2
    port=$(free_port)
    start_node "$name" "$port" "$@" || { fail "$name: node started"; return; }
    local pid_var=NODE_PID_$name
    local pid=${!pid_var}
    sget "$port" 1.3 a.example "" "" >/dev/null # a served connection: its teardown runs too
    kill -"$sig" "$pid"
    exits_within 30 "$pid"
    check "$name: SIG$sig stops the node with exit 0 ($status)" [ "$status" = "exit status 0" ]
    check "$name: no worker ended abnormally" bash -c "! grep -E 'exited on signal|abnormally|Assertion' '$TLSC_TMP/$name.log'"
    check "$name: no sanitizer report" bash -c "[ -z \"\$(ls -A '$TLSC_TMP/san')\" ]"
}

# exited_nonzero STATUS: STATUS (from exits_within) says the process ended, with a non-zero code.
exited_nonzero() { [ -n "$1" ] && [ "$1" != "exit status 0" ]; }

REDIS_UP=$REDIS_PORT
n=0
for sig in TERM INT; do
    for redis in up down; do
        [ "$redis" = up ] && REDIS_PORT=$REDIS_UP || REDIS_PORT=$DEAD_PORT
        n=$((n + 1)); stop_case "c${n}_cache_redis_$redis" "$sig" --resumption cache
        for daemon in up down; do
            [ "$daemon" = up ] && kd=$DPORT || kd=$DEAD_PORT
            for mode in cache tickets both; do
                n=$((n + 1))
                stop_case "c${n}_${mode}_keyd_${daemon}_redis_$redis" "$sig" --resumption "$mode" \
                    --keyd "127.0.0.1:$kd" --keyd-secret-file "$SECRET"
            done
        done
    done
done
REDIS_PORT=$REDIS_UP

# A worker that crashes while the node stops: the master says so and exits non-zero.
port=$(free_port)
start_node crash "$port" || exit 1
workers=$(worker_pids "$NODE_PID_crash")
kill -STOP $workers          # hold the workers so the SIGTERM below cannot finish them first
kill -TERM "$NODE_PID_crash" # the master starts stopping ...
wait_for 10 "the master to start stopping" log_has "$TLSC_TMP/crash.log" 'SIGTERM: stopping workers'
kill -ABRT $workers # ... and the workers die abnormally
kill -CONT $workers
exits_within 30 "$NODE_PID_crash"
check "a worker crashing during shutdown makes the master exit non-zero (${status:-still running})" exited_nonzero "$status"
check "the master names the signal the worker died of" log_has "$TLSC_TMP/crash.log" 'exited on signal 6'
rm -f "$TLSC_TMP"/san/* # the abort above was on purpose

# SIGHUP: the master loads the new certificate and replaces the workers; the old ones drain.
served_subject() { # PORT: the subject of the certificate served without SNI
    openssl s_client -connect "127.0.0.1:$1" -noservername </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null
}
subject_is() { local got; got=$(served_subject "$1"); echo "served: ${got:-nothing}"; grep -q "$2" <<<"$got"; }
cp "$TLSC_TMP/pki/default.pem" "$TLSC_TMP/cur.pem"
cp "$TLSC_TMP/pki/default.key" "$TLSC_TMP/cur.key"
port=$(free_port)
"$SERVER_BIN" --listen "127.0.0.1:$port" --workers 2 --node reload --cert "$TLSC_TMP/cur.pem" --key "$TLSC_TMP/cur.key" \
    --redis "redis://127.0.0.1:$REDIS_PORT" >"$TLSC_TMP/reload.log" 2>&1 &
reload_pid=$!
track $reload_pid
wait_port "$port" 15 || exit 1
check "before the reload the old certificate is served" subject_is "$port" "CN *= *localhost"
old_workers=$(worker_pids $reload_pid | sort | tr '\n' ' ')
cp "$TLSC_TMP/pki/a.pem" "$TLSC_TMP/cur.pem"
cp "$TLSC_TMP/pki/a.key" "$TLSC_TMP/cur.key"
kill -HUP $reload_pid
check "SIGHUP: the reload names the certificate it loaded" \
    wait_for 10 "the reload in reload.log" log_has "$TLSC_TMP/reload.log" "SIGHUP: certificate 1: .*a.example"
check "SIGHUP: the new certificate is served" wait_for 10 "the new certificate" subject_is "$port" "CN *= *a.example"
check "SIGHUP: the old workers drain and exit 0" \
    wait_for 15 "two drained workers" bash -c "[ \$(grep -c 'drained and exited with status 0' '$TLSC_TMP/reload.log') = 2 ]"
new_workers=$(worker_pids $reload_pid | sort | tr '\n' ' ')
check "SIGHUP: new worker processes serve ($old_workers -> $new_workers)" [ "$old_workers" != "$new_workers" ]
kill -TERM $reload_pid
exits_within 30 $reload_pid
check "after a reload, SIGTERM still stops with exit 0 ($status)" [ "$status" = "exit status 0" ]

# A stop right behind a reload: SIGHUP and SIGTERM back to back reach workers that are still
# starting (prefaulting a large --local-cache). They must drain, not die of the signal's
# default action (a systemd unit stopped after a reload ended "failed" that way).
port=$(free_port)
"$SERVER_BIN" --listen "127.0.0.1:$port" --workers 2 --node hupterm --local-cache 512m --cert "$TLSC_TMP/cur.pem" --key "$TLSC_TMP/cur.key" \
    --redis "redis://127.0.0.1:$REDIS_PORT" >"$TLSC_TMP/hupterm.log" 2>&1 &
hupterm_pid=$!
track $hupterm_pid
wait_port "$port" 15 || exit 1
kill -HUP $hupterm_pid
kill -TERM $hupterm_pid
exits_within 30 $hupterm_pid
check "SIGTERM right behind SIGHUP: exit 0 ($status)" [ "$status" = "exit status 0" ]
check "... and no worker died of the signal" bash -c "! grep -E 'exited on signal|abnormally' '$TLSC_TMP/hupterm.log'"

# SIGTERM to every process at once, as systemd's default KillMode=control-group does: each
# worker gets two or more (its own, the master's), and a late one may come while it tears
# down (the deb test's unit ended "failed" that way). Three rounds: the window is narrow.
group_term() { # ROUND: sets status (as exits_within); the log is groupterm.ROUND.log
    local port pid workers
    status=""
    port=$(free_port)
    "$SERVER_BIN" --listen "127.0.0.1:$port" --workers 2 --node groupterm --cert "$TLSC_TMP/cur.pem" --key "$TLSC_TMP/cur.key" \
        --redis "redis://127.0.0.1:$REDIS_PORT" >"$TLSC_TMP/groupterm.$1.log" 2>&1 &
    pid=$!
    track $pid
    wait_port "$port" 15 >/dev/null || return 1
    wait_for 15 "two workers" bash -c "[ \$(ps -o pid= --ppid $pid | wc -l) = 2 ]" >/dev/null || return 1
    workers=$(ps -o pid= --ppid $pid)
    kill -TERM $pid $workers
    # More SIGTERMs while they stop (bounded: until a worker is gone), so one lands in a teardown.
    for _ in $(seq 20000); do kill -TERM $workers 2>/dev/null || break; done
    exits_within 30 $pid
}
for round in 1 2 3; do
    group_term $round
    check "SIGTERM to master and workers at once, round $round: exit 0 (${status:-still running})" [ "$status" = "exit status 0" ]
    check "... and no worker died of a late SIGTERM" bash -c "! grep -E 'exited on signal|abnormally' '$TLSC_TMP/groupterm.$round.log'"
done

# --check / -t: validates, binds and connects nothing, prints what would be served.
port=$(free_port)
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 5 -subj /CN=soon.example \
    -addext subjectAltName=DNS:soon.example -keyout "$TLSC_TMP/soon.key" -out "$TLSC_TMP/soon.pem" 2>/dev/null)
out=$(TLSCACHE_REDIS="redis://u:hunter2@127.0.0.1:1/3" "$SERVER_BIN" --check --listen "127.0.0.1:$port" \
    --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/a.key" \
    --cert "$TLSC_TMP/soon.pem" --key "$TLSC_TMP/soon.key" --alpn http/1.1 2>&1)
rc=$?
echo "$out"
check "--check: exit 0 on a good configuration ($rc)" [ "$rc" = 0 ]
check "--check: names the listen address" grep -q "listen .*127.0.0.1:$port" <<<"$out"
check "--check: each certificate with subject, SANs, key type and expiry" \
    bash -c 'grep -q "certificate  1: .*a.example.*SAN .*a.example.*EC.*expires" <<<"$1"' _ "$out"
check "--check: warns about a certificate that expires within 14 days" grep -q "soon.example.*WARNING: expires within 14 days" <<<"$out"
check "--check: the Redis password is masked" bash -c '! grep -q hunter2 <<<"$1" && grep -q "redis://u:\*\*\*@127.0.0.1:1/3" <<<"$1"' _ "$out"
check "--check: binds nothing" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
out=$("$SERVER_BIN" -t --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/b.key" 2>&1)
rc=$?
check "-t: a key that does not match its certificate is exit 1 with one line ($rc: $out)" \
    bash -c '[ "$1" = 1 ] && [ "$(wc -l <<<"$2")" = 1 ]' _ "$rc" "$out"

# --user: the master binds and reads the files as root, the workers serve as the user; a reload
# still works with certificate and key readable by root only (the master reads them).
(umask 077 && cp "$TLSC_TMP/pki/default.pem" "$TLSC_TMP/cur.pem" && cp "$TLSC_TMP/pki/default.key" "$TLSC_TMP/cur.key")
chmod 711 "$TLSC_TMP" && chmod 1777 "$TLSC_TMP/san" # sanitizer reports of the dropped workers still land
port=$(free_port)
"$SERVER_BIN" --listen "127.0.0.1:$port" --workers 2 --node user --cert "$TLSC_TMP/cur.pem" --key "$TLSC_TMP/cur.key" \
    --user nobody --redis "redis://127.0.0.1:$REDIS_PORT" >"$TLSC_TMP/user.log" 2>&1 &
user_pid=$!
track $user_pid
wait_port "$port" 15 || exit 1
worker_users() { ps -o user= --ppid "$1" | sort -u | tr -d ' \n'; }
workers_are_nobody() { local u; u=$(worker_users "$1"); echo "workers run as: ${u:-none}"; [ "$u" = nobody ]; }
# The port answers once the master binds; each worker drops after it set up (L1 pages included).
check "--user: the workers run as nobody" wait_for 15 "workers as nobody" workers_are_nobody $user_pid
check "--user: the master stays root to bind and reload ($(ps -o user= -p $user_pid))" [ "$(ps -o user= -p $user_pid | tr -d ' ')" = root ]
check "--user: the workers serve" sget "$port" 1.3 a.example "" ""
check "--user: the worker cannot read the key file" bash -c "! runuser -u nobody -- cat '$TLSC_TMP/cur.key' >/dev/null 2>&1"
cp "$TLSC_TMP/pki/a.pem" "$TLSC_TMP/cur.pem"
cp "$TLSC_TMP/pki/a.key" "$TLSC_TMP/cur.key"
kill -HUP $user_pid
check "--user: a reload serves the new certificate (read by the master)" wait_for 10 "the new certificate" subject_is "$port" "CN *= *a.example"
check "--user: the new workers run as nobody too" wait_for 10 "only nobody's workers" bash -c "[ \"\$(ps -o user= --ppid $user_pid | sort -u | tr -d ' \n')\" = nobody ]"
kill -TERM $user_pid
exits_within 30 $user_pid
check "--user: SIGTERM stops with exit 0 ($status)" [ "$status" = "exit status 0" ]

# A busy port is refused, unless sharing is asked for.
port=$(free_port)
start_node first "$port" || exit 1
"$SERVER_BIN" --listen "127.0.0.1:$port" --workers 1 --node second --cert "$TLSC_TMP/pki/b.pem" --key "$TLSC_TMP/pki/b.key" \
    --redis "redis://127.0.0.1:$REDIS_PORT" >"$TLSC_TMP/second.log" 2>&1 &
second=$!
track $second
exits_within 15 $second
check "a second server on a port in use exits non-zero (${status:-still running})" exited_nonzero "$status"
check "... with one line that names the flag and says why" \
    bash -c "[ \$(wc -l <'$TLSC_TMP/second.log') = 1 ] && grep -q -- '--listen 127.0.0.1:$port: address already in use' '$TLSC_TMP/second.log'"
start_node shared "$port" --reuseport-share || exit 1
# served_by PORT NODE: one request lands on NODE (SO_REUSEPORT spreads connections by 4-tuple).
served_by() { local r; r=$(sget "$1" 1.3 a.example "" ""); echo "answered by: ${r:-nothing}"; [ "$(jfield "$r" node)" = "$2" ]; }
check "--reuseport-share joins the port on purpose: the second node takes part of the traffic" \
    wait_for 20 "node shared to answer" served_by "$port" shared
stop_pid "$NODE_PID_shared"
stop_pid "$NODE_PID_first"
start_node again "$port" || exit 1
check "a restart right after a stop binds the port again" sget "$port" 1.3 a.example "" ""

finish
