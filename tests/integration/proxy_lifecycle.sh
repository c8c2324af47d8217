#!/usr/bin/env bash
# A proxied connection across the master's signals (one worker, an echo backend):
#   - SIGHUP replaces the worker; a proxied stream opened before it keeps carrying bytes both
#     ways on the old worker and ends cleanly, while new connections go to the new worker;
#   - SIGTERM drains: a proxied stream keeps carrying bytes during the drain, is cut at
#     --drain-timeout, logged with end=drain in the access log, and the node exits;
#   - --backends-file: SIGHUP reads the routes again (new connections go to the new backend);
#     a file that does not parse refuses the reload and the routes stay.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl python3 curl
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
T=$TLSC_TMP
PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a slow shim
PEER=("$PY" "$TLSC_ROOT/tests/lib/proxy_peer.py")

BE=$(free_port)
"${PEER[@]}" backend "$BE" echo >"$T/echo.log" 2>&1 &
track $!
wait_for 10 "the echo backend" log_has "$T/echo.log" '^listening$' || exit 1
PE=$(free_port)
WORKERS=1 start_node E "$PE" --backend "127.0.0.1:$BE" --drain-timeout 8 --access-log "$T/access.log" || exit 1
first_worker=$(worker_pids "$NODE_PID_E")

echo "# ${SECONDS}s: SIGHUP with a proxied stream open"
"${PEER[@]}" client "$PE" hold "$T/go1" >"$T/hold1.out" 2>&1 &
track $!
wait_for 20 "the first stream's first echo" log_has "$T/hold1.out" '^first ok$'
kill -HUP "$NODE_PID_E"
new_worker() { local w; w=$(worker_pids "$NODE_PID_E" | grep -vx "$first_worker" | head -n1); echo "new worker: ${w:-none}"; [ -n "$w" ]; }
check "sighup: a new worker replaces the old one" wait_for 20 "the reload" new_worker
"${PEER[@]}" client "$PE" pingpong 3 >"$T/pp.out" 2>&1
check "sighup: a new connection is proxied ($(cat "$T/pp.out"))" grep -q '^ok 3$' "$T/pp.out"
touch "$T/go1"
check "sighup: the stream opened before it still carries bytes" wait_for 20 "the second echo" log_has "$T/hold1.out" '^second ok$'
check "sighup: and ends cleanly (close_notify both ways)" wait_for 20 "the end" log_has "$T/hold1.out" '^end clean$'
check "sighup: the old worker exits once its stream is done" wait_for 20 "the old worker to exit" \
    sh -c "! kill -0 $first_worker 2>/dev/null"

echo "# ${SECONDS}s: SIGTERM drains a proxied stream up to --drain-timeout"
HOLD_END=1 "${PEER[@]}" client "$PE" hold "$T/go2" >"$T/hold2.out" 2>&1 &
track $!
wait_for 20 "the second stream's first echo" log_has "$T/hold2.out" '^first ok$'
kill -TERM "$NODE_PID_E"
wait_for 10 "the node to drain" log_has "$T/E.log" 'draining'
touch "$T/go2"
check "sigterm: while draining, the stream still carries bytes" wait_for 20 "the echo" log_has "$T/hold2.out" '^second ok$'
check "sigterm: at --drain-timeout the stream is ended" wait_for 30 "the end" log_has "$T/hold2.out" '^end '
check "sigterm: the node exits" wait_for 20 "the node to exit" sh -c "! kill -0 $NODE_PID_E 2>/dev/null"
check "sigterm: the access log says end=drain" log_has "$T/access.log" 'end=drain'

echo "# ${SECONDS}s: --backends-file, read again on SIGHUP"
BA=$(free_port)
BB=$(free_port)
"${PEER[@]}" backend "$BA" ppv2 >"$T/ppv2.log" 2>&1 &
track $!
"${PEER[@]}" backend "$BB" first >"$T/first.log" 2>&1 &
track $!
wait_for 10 "backend A" log_has "$T/ppv2.log" '^listening$'
wait_for 10 "backend B" log_has "$T/first.log" '^listening$'
printf '# the routes\n127.0.0.1:%s\n' "$BA" >"$T/routes"
PG=$(free_port)
WORKERS=1 start_node G "$PG" --backends-file "$T/routes" --proxy-protocol v2 --drain-timeout 2 || exit 1
get() { curl -sk --http0.9 --max-time 10 "https://127.0.0.1:$PG/"; }
reply=$(get)
check "backends_file: the route from the file ($reply)" grep -q '^pp2 ' <<<"$reply"
printf '127.0.0.1:%s\n' "$BB" >"$T/routes"
kill -HUP "$NODE_PID_G"
check "backends_file: SIGHUP reads it again" wait_for 20 "the reload" log_has "$T/G.log" "SIGHUP: 1 route\\(s\\) from"
goes_to_b() { local r; r=$(get); echo "reply: $r"; [ "$r" = greeting ]; }
check "backends_file: new connections take the new route" wait_for 20 "a reply from backend B" goes_to_b
printf 'sni:=127.0.0.1:1\n' >"$T/routes"
kill -HUP "$NODE_PID_G"
check "backends_file: a bad file refuses the reload, naming the line" \
    wait_for 20 "the refusal" log_has "$T/G.log" "reload refused.*$T/routes:1:"
reply=$(get)
check "backends_file: the routes stay ($reply)" [ "$reply" = greeting ]

finish
