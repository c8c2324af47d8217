#!/usr/bin/env bash
# --proxy-protocol v1|v2 read by real consumers: nginx `listen ... proxy_protocol` logs the
# client's address and port (v1 and v2), HAProxy `accept-proxy` reads the v2 AUTHORITY TLV
# (the SNI); a v2 parser of our own reads the TLS TLVs, and the tlscache TLV (0xE0) says a
# session made on one node was resumed on another, and which node made it. --accept-proxy
# behind HAProxy `send-proxy-v2`: the client's address goes LB -> node -> backend; a
# malformed header or none closes the connection and is counted.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl nginx haproxy curl python3
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
T=$TLSC_TMP
PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a slow shim
read -r -a P <<<"$("$PY" -c '
import socket
ss = [socket.socket() for _ in range(10)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
NGX=${P[0]} H1=${P[1]} HAP=${P[2]} PP2=${P[3]} N1=${P[4]} N2=${P[5]} N3=${P[6]} CPORT=${P[7]} LB=${P[8]} N4=${P[9]}

mkdir -p "$T/www" "$T/nginx"
echo "hello" >"$T/www/hello.txt"
cat >"$T/nginx/nginx.conf" <<NGX
daemon off;
master_process off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 64; }
http {
    log_format pp 'pp=\$proxy_protocol_addr:\$proxy_protocol_port \$request';
    access_log $T/nginx/access.log pp;
    client_body_temp_path $T/nginx/body;
    server { listen 127.0.0.1:$NGX proxy_protocol; root $T/www; }
    server { listen 127.0.0.1:$H1; root $T/www; }
}
NGX
nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" 2>>"$T/nginx/error.log" &
track $!
cat >"$T/haproxy.cfg" <<HAP
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$HAP accept-proxy
    log-format "hap src=%ci:%cp authority=%[fc_pp_authority]"
    default_backend be
backend be
    server s1 127.0.0.1:$H1
frontend lb
    bind 127.0.0.1:$LB
    default_backend nodes
backend nodes
    server n4 127.0.0.1:$N4 send-proxy-v2
HAP
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
track $!
"$PY" "$TLSC_ROOT/tests/lib/proxy_peer.py" backend "$PP2" ppv2 >"$T/ppv2.log" 2>&1 &
track $!
wait_port "$NGX" 10 && wait_port "$HAP" 10 && wait_port "$PP2" 10 || { cat "$T/nginx/error.log" "$T/haproxy.log"; exit 1; }

export WORKERS=1
start_node N1 "$N1" --proxy-protocol v1 --backend "127.0.0.1:$NGX" || exit 1
start_node N2 "$N2" --proxy-protocol v2 --alpn http/1.1 --backend "127.0.0.1:$NGX" --backend "sni:hap.test=127.0.0.1:$HAP" \
    --backend "sni:tlv.test=127.0.0.1:$PP2" || exit 1
start_node N3 "$N3" --proxy-protocol v2 --backend "127.0.0.1:$PP2" || exit 1
start_node N4 "$N4" --accept-proxy --proxy-protocol v1 --backend "127.0.0.1:$NGX" || exit 1

# The client connects from 127.0.0.5 and a port of our choosing, so the consumers' view is unmistakable.
for n in "N1 $N1 v1" "N2 $N2 v2"; do
    set -- $n
    out=$(curl -sk --interface 127.0.0.5 --local-port "$CPORT" "https://127.0.0.1:$2/hello.txt?$3")
    check "$3: curl through the proxy reaches nginx (got $out)" [ "$out" = hello ]
    check "$3: nginx reads the client's address and port from the PROXY header" \
        log_has "$T/nginx/access.log" "^pp=127.0.0.5:$CPORT GET /hello.txt\\?$3 "
done
out=$(curl -sk --interface 127.0.0.5 --resolve "hap.test:$N2:127.0.0.1" "https://hap.test:$N2/hello.txt")
check "v2: through HAProxy accept-proxy (got $out)" [ "$out" = hello ]
check "v2: HAProxy reads the client address and the AUTHORITY TLV (SNI)" \
    wait_for 10 "HAProxy's log line" log_has "$T/haproxy.log" '^hap src=127\.0\.0\.5:[0-9]+ authority=hap\.test$'

# The TLS TLVs, and resumption facts across two nodes.
for v in 1.2 1.3; do
    s_get() {
        timeout 10 openssl s_client -connect "127.0.0.1:$1" "-tls1_${v#1.}" -servername tlv.test -ign_eof "${@:2}" </dev/null 2>/dev/null | grep -a '^pp2 '
    }
    r1=$(s_get "$N2" -sess_out "$T/sess.$v")
    r2=$(s_get "$N3" -sess_in "$T/sess.$v")
    echo "# tls$v: $r1"
    echo "# tls$v: $r2"
    check "tls$v: v2 carries SNI, version, cipher and a full handshake made on N2" \
        grep -Eq "authority=tlv\.test client=1 e0=0:N2 src=127\.0\.0\.1:[0-9]+ version=TLSv$v\$" <<<"${r1/ cipher=* client/ client}"
    check "tls$v: v2 carries the cipher" grep -Eq ' cipher=[A-Z0-9_-]+ ' <<<"$r1"
    check "tls$v: on N3 the TLV says resumed, session made on N2" grep -q " e0=1:N2 " <<<"$r2"
done
# --accept-proxy behind HAProxy send-proxy-v2: nginx, two hops further, sees the client.
out=$(curl -sk --interface 127.0.0.5 --local-port "$CPORT" "https://127.0.0.1:$LB/hello.txt?lb")
check "accept-proxy: curl -> HAProxy (send-proxy-v2) -> tlscache -> nginx (got $out)" [ "$out" = hello ]
check "accept-proxy: nginx sees the client's address and port through both hops" \
    log_has "$T/nginx/access.log" "^pp=127.0.0.5:$CPORT GET /hello.txt\\?lb "
out=$(curl -sk -m 10 "https://127.0.0.1:$N4/hello.txt?direct")
check "accept-proxy: a client without a PROXY header gets nothing (got '$out')" [ -z "$out" ]
bad=$("$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"PROXY TCP4 127.0.0.1 127.0.0.1 99999 1\r\n\x16\x03\x01")
print("closed" if s.recv(100) == b"" else "answered")' "$N4")
check "accept-proxy: a malformed header closes the connection (got $bad)" [ "$bad" = closed ]
check "accept-proxy: bad headers are counted" wait_for 10 "proxy_header_bad" redis_stat_ge proxy_header_bad 2
finish
