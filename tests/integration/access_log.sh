#!/usr/bin/env bash
# --access-log: one line per connection, text and json (--log-format), fields right for a full
# and a resumed handshake, a proxied connection's backend and bytes, the client's address from
# a PROXY header (--accept-proxy), "-" (stdout), SIGUSR1 after a move reopens the path and lines
# go on there, and no session secret in any log.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
T=$TLSC_TMP
PY=$(python3 -c 'import sys; print(sys.executable)')
mkdir -p "$T/logs"
read -r -a PORTS <<<"$("$PY" -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
PA=${PORTS[0]} PB=${PORTS[1]} SINK=${PORTS[2]} PC=${PORTS[3]}
ALOG=$T/logs/a.access

# lines FILE: access-log lines of finished handshakes in FILE (wait_port's probes are logged
# too, with session=- / "session":null).
lines() { grep -a -c -E '( session=[a-z]|"session":")' "$1"; }
hs_lines() { grep -a -E '( session=[a-z]|"session":")' "$1"; }
lines_ge() { local n; n=$(lines "$1"); echo "$n line(s) in $1"; [ "$n" -ge "$2" ]; }
# tfield LINE KEY: a key=value field of a text line.
tfield() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# --- text: a full and a resumed handshake (TLS 1.2 session ID, from Redis) ------------------
WORKERS=1 start_node A "$PA" --access-log "$ALOG" --alpn http/1.1 || exit 1
r1=$(sget "$PA" 1.2 a.example "" "$T/s12")
# A new session is in the node-local cache as well as in Redis. Drop the local copies (a "*" on
# the revocation channel drops them without deleting anything in Redis), so that the next
# resumption reads Redis, which fills the local cache again for the one after.
check "text: the node's revocation feed hears a drop-all" wait_for 10 "a subscriber on tlscache:revoked" \
    bash -c '[ "$(redis-cli -p "$1" publish tlscache:revoked "*")" -ge 1 ]' _ "$REDIS_PORT"
check "text: the local cache was dropped" wait_for 10 "the drop in A's log" log_has "$TLSC_TMP/A.log" "every cached session dropped"
r2=$(sget "$PA" 1.2 a.example "$T/s12" "")
r3=$(sget "$PA" 1.2 a.example "$T/s12" "") # the Redis read filled the node-local cache
check "text: the second handshake resumed (server says $(jfield "$r2" resumed))" [ "$(jfield "$r2" resumed)" = true ]
wait_for 10 "three access-log lines" lines_ge "$ALOG" 3 || cat "$ALOG"
L1=$(hs_lines "$ALOG" | sed -n 1p)
L2=$(hs_lines "$ALOG" | sed -n 2p)
L3=$(hs_lines "$ALOG" | sed -n 3p)
echo "# $L1"
echo "# $L2"
check "text: full handshake fields" [ "$(tfield "$L1" sni)/$(tfield "$L1" protocol)/$(tfield "$L1" resumed)/$(tfield "$L1" session)" = a.example/TLSv1.2/no/full ]
check "text: resumed handshake fields" [ "$(tfield "$L2" resumed)/$(tfield "$L2" session)/$(tfield "$L2" close)" = yes/redis/done ]
check "text: resumed again, from the node-local cache ($(jfield "$r3" resumed))" [ "$(tfield "$L3" resumed)/$(tfield "$L3" session)" = yes/local ]
check "text: client address is the loopback peer" grep -q -E '^127\.0\.0\.1:[0-9]+$' <<<"$(tfield "$L1" client)"
check "text: cipher, handshake time" grep -q -E ' cipher=ECDHE-[A-Z0-9-]+ .* handshake_ms=[0-9]+\.[0-9]{3} ' <<<"$L1"
check "text: a connection without a handshake (wait_port's probe) is logged too" \
    grep -q -E ' sni=- alpn=- protocol=- cipher=- resumed=- session=- handshake_ms=- bytes_in=0 bytes_out=0 .* close=peer ' "$ALOG"
# sget sends "GET / HTTP/1.1\r\nHost: x\r\n\r\n" (27 bytes); the responder answers one JSON line.
check "text: bytes in and out (in=$(tfield "$L2" bytes_in) out=$(tfield "$L2" bytes_out))" \
    [ "$(tfield "$L2" bytes_in)/$(($(tfield "$L2" bytes_out) > 27))" = 27/1 ]
check "text: no backend, no proxy end for the responder" [ "$(tfield "$L2" backend)/$(tfield "$L2" end)" = -/- ]

# --- SIGUSR1 after a move: the old file keeps its lines, new lines go to the path ------------
mv "$ALOG" "$ALOG.1"
kill -USR1 "$NODE_PID_A"
wait_for 10 "the worker reopened the access log" log_has "$T/A.log" 'access log .* reopened' || exit 1
sget "$PA" 1.3 a.example "" "" >/dev/null
wait_for 10 "a line in the new file" lines_ge "$ALOG" 1
check "SIGUSR1: the moved file kept exactly its three lines" [ "$(lines "$ALOG.1")" = 3 ]
check "SIGUSR1: the new line is a TLS 1.3 one" grep -q ' protocol=TLSv1.3 ' "$ALOG"
check "SIGUSR1: the master and its worker live on" kill -0 "$(worker_pids "$NODE_PID_A" | head -1)"

# --- json to stdout ("-"), through the proxy --------------------------------------------------
"$PY" "$TLSC_ROOT/tests/lib/proxy_peer.py" backend "$SINK" sink >"$T/sink.log" 2>&1 &
track $!
wait_port "$SINK" 10 || exit 1
WORKERS=1 start_node B "$PB" --access-log - --log-format json --backend "127.0.0.1:$SINK" || exit 1
up=$(PEER_SNI=a.example "$PY" "$TLSC_ROOT/tests/lib/proxy_peer.py" client "$PB" upload 100000)
echo "# upload: $up"
wait_for 10 "an access-log line on B's stdout" lines_ge "$T/B.log" 1 || exit 1
J=$(hs_lines "$T/B.log" | head -1)
echo "# $J"
check "json: the line parses" jq -e . <<<"$J"
check "json: backend and bytes in ($(jq -c '[.backend,.bytes_in,.bytes_out]' <<<"$J"))" \
    [ "$(jq -r '"\(.backend) \(.bytes_in) \(.bytes_out > 0)"' <<<"$J")" = "127.0.0.1:$SINK 100000 true" ]
check "json: handshake facts ($(jq -c '[.sni,.protocol,.resumed,.session,.end,.close]' <<<"$J"))" \
    [ "$(jq -r '"\(.sni) \(.protocol) \(.resumed) \(.session) \(.end)"' <<<"$J")" = "a.example TLSv1.3 false full done" ]
check "json: daemon log lines are JSON too, and apart from the access lines" \
    jq -e 'select(.level != null) | .msg' <<<"$(grep -a '"level":' "$T/B.log" | head -1)"

# --- --accept-proxy: the address the load balancer reports ------------------------------------
WORKERS=1 start_node C "$PC" --access-log "$T/logs/c.access" --accept-proxy --alpn h2,http/1.1 || exit 1
"$PY" - "$PC" <<'EOF'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40123 443\r\n")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
t = ctx.wrap_socket(s, server_hostname="b.example")
t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
t.recv(4096)
t.close()
EOF
wait_for 10 "an access-log line on C" lines_ge "$T/logs/c.access" 1 || exit 1
check "accept-proxy: the client is the PROXY header's source" grep -q ' client=203\.0\.113\.7:40123 sni=b\.example alpn=http/1\.1 protocol=TLSv1\.3 ' "$T/logs/c.access"

# --- no session secret in any log ------------------------------------------------------------
masters=$(openssl sess_id -in "$T/s12" -noout -text 2>/dev/null | sed -n 's/^ *Master-Key: *\([0-9A-Fa-f]*\)$/raw \1/p')
check "the TLS 1.2 session's master key was read" grep -q '^raw [0-9A-Fa-f]\{96\}$' <<<"$masters"
cp "$T/A.log" "$T/B.log" "$T/C.log" "$T/logs/"
check "no session master key in the access or daemon logs" \
    python3 "$TLSC_ROOT/tests/lib/scan_secrets.py" "$REDIS_PORT" "$T/logs" <<<"$masters"

# --- a path no worker could open fails the start (from the environment, as every flag) -------
TLSCACHE_ACCESS_LOG=$T/no-such-dir/a.log timeout 20 "$SERVER_BIN" --listen "127.0.0.1:$(free_port)" --workers 1 \
    --cert "$T/pki/default.pem" --key "$T/pki/default.key" --redis "redis://127.0.0.1:$REDIS_PORT" >"$T/bad.log" 2>&1
rc=$?
check "an unopenable --access-log (env TLSCACHE_ACCESS_LOG) fails the start (rc=$rc)" [ "$rc" = 1 ]
check "and says which flag and file" grep -q -- '--access-log: cannot open .*no-such-dir/a.log' "$T/bad.log"

check "A stops cleanly" stop_pid "$NODE_PID_A"
check "B stops cleanly" stop_pid "$NODE_PID_B"
check "C stops cleanly" stop_pid "$NODE_PID_C"
finish
