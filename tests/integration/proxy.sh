#!/usr/bin/env bash
# tlscache-server as a TLS terminator (--backend): real clients (curl HTTP/1.1 keep-alive and
# h2 through ALPN, Node.js https, a Python TLS client that drives close_notify by hand) through
# the proxy to real backends (nginx, and the small Python backends of tests/lib/proxy_peer.py):
# bytes both ways with equal sha256, half-close both ways, a slow reader with bounded worker
# memory, a backend down / slow to accept / resetting mid-stream, a client that vanishes, the
# idle timeout, and session resumption through the proxy on two nodes.
#
# PROXY_MB sets the bulk size (default 200 MB on the optimized build, 50 MB on a sanitizer
# build, where the 200 MB run alone takes minutes).
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq node python3 nginx curl sha256sum
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
T=$TLSC_TMP
PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, not a slow shim
PEER=("$PY" "$TLSC_ROOT/tests/lib/proxy_peer.py")
# Free ports, all at once (each free_port starts an interpreter).
read -r -a PORTS <<<"$("$PY" -c '
import socket
ss = [socket.socket() for _ in range(12)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
if grep -q '^TLSC_SANITIZE:BOOL=ON' "$TLSC_BIN/CMakeCache.txt" 2>/dev/null; then MB=${PROXY_MB:-50}; else MB=${PROXY_MB:-200}; fi
echo "# bulk transfers: $MB MB"

echo "# ${SECONDS}s"
# --- backends ------------------------------------------------------------------------------
H1=${PORTS[0]}
H2=${PORTS[1]}
mkdir -p "$T/www" "$T/nginx"
echo "hello from nginx" >"$T/www/hello.txt"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$T/www/big.bin"
cat >"$T/nginx/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 256; }
http {
    log_format t '\$server_protocol \$request \$status conn=\$connection n=\$connection_requests';
    access_log $T/nginx/access.log t;
    client_body_temp_path $T/nginx/body;
    keepalive_timeout 60;
    server { listen 127.0.0.1:$H1; root $T/www; }
    server { listen 127.0.0.1:$H2 http2; root $T/www; }
}
NGX
nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" 2>>"$T/nginx/error.log" &
track $!
i=2
for mode in echo sink source first reset full; do
    port=${PORTS[i]}
    i=$((i + 1))
    printf -v "BE_${mode}" '%s' "$port"
    "${PEER[@]}" backend "$port" "$mode" "$T/$mode.status" >"$T/$mode.log" 2>&1 &
    track $!
done
DEAD=${PORTS[8]} # nothing listens on these two
DEAD2=${PORTS[9]}
wait_port "$H1" 10 && wait_port "$H2" 10 || { cat "$T/nginx/error.log"; exit 1; }
wait_for 10 "the Python backends" log_has "$T/full.log" '^full$' || exit 1

echo "# ${SECONDS}s"
# --- the proxy: node E (one worker, so health is logged exactly once) and node F -----------
ROUTES=(--alpn h2,http/1.1 --backend "127.0.0.1:$H1" --backend "alpn:h2=127.0.0.1:$H2"
    --backend "sni:echo.test=127.0.0.1:$BE_echo" --backend "sni:*.w.example=127.0.0.1:$BE_echo")
PE=${PORTS[10]}
PF=${PORTS[11]}
WORKERS=1 start_node E "$PE" "${ROUTES[@]}" --backend-timeout 500 \
    --backend "sni:sink.test=127.0.0.1:$BE_sink" --backend "sni:source.test=127.0.0.1:$BE_source" \
    --backend "sni:first.test=127.0.0.1:$BE_first" --backend "sni:reset.test=127.0.0.1:$BE_reset" \
    --backend "sni:down.test=127.0.0.1:$DEAD" --backend "sni:full.test=127.0.0.1:$BE_full" \
    --backend "sni:rr.test=127.0.0.1:$DEAD2" --backend "sni:rr.test=127.0.0.1:$BE_echo" || exit 1
start_node F "$PF" "${ROUTES[@]}" --idle-timeout 1 || exit 1
peer() { PEER_SNI=$1 "${PEER[@]}" client "${@:2}"; }

echo "# ${SECONDS}s"
# --- HTTP through the proxy ----------------------------------------------------------------
URL=https://127.0.0.1:$PE
out=$(curl -sk --http1.1 -v "$URL/hello.txt" "$URL/hello.txt" 2>"$T/curl.err")
check "curl_http1_two_requests_through_proxy_reach_nginx" [ "$out" = "hello from nginx
hello from nginx" ]
check "curl_http1_keepalive_reuses_the_proxied_connection" grep -q "Re-using existing connection" "$T/curl.err"
check "nginx_served_both_on_one_connection" log_has "$T/nginx/access.log" '^HTTP/1.1 GET /hello.txt HTTP/1.1 200 conn=[0-9]+ n=2$'
ver=$(curl -sk --http2 -o /dev/null -w '%{http_version}' "$URL/hello.txt")
check "curl_h2_through_alpn_route_is_http2 (got $ver)" [ "$ver" = 2 ]
check "alpn_h2_route_reached_the_h2c_backend" log_has "$T/nginx/access.log" '^HTTP/2.0 GET /hello.txt HTTP/2.0 200'
node_out=$(timeout 20 node -e '
const https = require("https");
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
const get = () => new Promise((ok, bad) => https.get({host: "127.0.0.1", port: process.argv[1], path: "/hello.txt",
    agent, rejectUnauthorized: false}, r => { let b = ""; r.on("data", d => b += d);
    r.on("end", () => ok(r.statusCode + " " + r.req.reusedSocket + " " + b.trim())); }).on("error", bad));
(async () => { const a = await get(); const b = await get(); console.log(a + "|" + b); agent.destroy(); })()
  .catch(e => { console.log("error " + e.message); process.exit(1); });' "$PE")
check "node_https_keepalive_two_requests_one_socket (got $node_out)" [ "$node_out" = "200 false hello from nginx|200 true hello from nginx" ]

echo "# ${SECONDS}s"
# --- bulk both ways, sha256 equal -------------------------------------------------------------
want=$(sha256sum <"$T/www/big.bin" | cut -d' ' -f1)
got=$(curl -sk --http1.1 "$URL/big.bin" | sha256sum | cut -d' ' -f1)
check "download_${MB}MB_from_nginx_sha256_equal" [ "$got" = "$want" ]
# Redis stalled: a new session's last flight is held back until the store gives up, and the
# bytes nginx sent meanwhile wait with it; then they all go at once, and the download goes on.
kill -STOP "$REDIS_PID"
got=$(curl -sk -m 120 --http1.1 "$URL/big.bin" | sha256sum | cut -d' ' -f1)
kill -CONT "$REDIS_PID"
check "download_${MB}MB_while_the_session_store_is_held_back_completes" [ "$got" = "$want" ]
up=$(peer sink.test "$PE" upload "$((MB * 1024 * 1024))")
check "upload_${MB}MB_sha256_equal_at_the_backend (sent/received: $up)" [ "${up% *}" = "${up#* }" ]
down=$(peer source.test "$PE" download "$((MB * 1024 * 1024))")
sent=$(grep '^sent ' "$T/source.log" | tail -1)
check "download_${MB}MB_from_backend_sha256_equal_and_clean ($down / $sent)" [ "${down% clean}" = "${sent#sent }" ]

echo "# ${SECONDS}s"
# --- half-close both ways, long-lived stream -------------------------------------------------
for v in 1.2 1.3; do
    r=$(TLS_VERSION=$v peer echo.test "$PE" halfclose)
    check "tls$v: client close_notify reaches the backend as FIN and its answer still comes back (got $r)" \
        [ "$r" = "helloEOF-SEEN| clean" ]
    r=$(TLS_VERSION=$v peer first.test "$PE" afterfin)
    check "tls$v: backend FIN reaches the client as close_notify (got $r)" [ "$r" = "greeting clean" ]
done
check "after_the_backend_FIN_the_client_still_sends" wait_for 10 "the backend got the client's bytes" \
    log_has "$T/first.log" '^got: after$'
r=$(peer x.w.example "$PE" pingpong 300)
check "long_lived_stream_300_round_trips_via_wildcard_route (got $r)" [ "$r" = "ok 300" ]

echo "# ${SECONDS}s"
# --- slow reader: the backend writes 100 MB, the client stops reading -------------------------
wpid=$(worker_pids "$NODE_PID_E")
rss() { awk '/^VmRSS/ {print $2}' "/proc/$wpid/status"; }
rss0=$(rss)
peer source.test "$PE" slow $((100 * 1024 * 1024)) "$T/go" >"$T/slow.out" &
slow_pid=$!
track "$slow_pid"
wait_for 60 "the backend blocked on a client that does not read" log_has "$T/source.status" '^blocked' || true
rss1=$(rss)
blocked=$(awk '{print $2}' "$T/source.status" 2>/dev/null)
echo "# slow reader: worker RSS ${rss0} kB before, ${rss1} kB with the client stalled; backend blocked after ${blocked:-?} bytes"
check "slow_reader_backend_blocks_before_100MB (${blocked:-none})" [ "${blocked:-999999999}" -lt $((100 * 1024 * 1024)) ]
check "slow_reader_worker_rss_grows_less_than_16MB (+$((rss1 - rss0)) kB)" [ $((rss1 - rss0)) -lt 16384 ]
touch "$T/go"
wait "$slow_pid"
r=$(cat "$T/slow.out")
sent=$(grep '^sent ' "$T/source.log" | tail -1)
check "slow_reader_gets_all_100MB_sha256_equal ($r)" [ "${r% clean}" = "${sent#sent }" ]

echo "# ${SECONDS}s"
# --- backend failures, a client that vanishes, the idle timeout ------------------------------
r=$(peer down.test "$PE" read)
check "backend_down_client_gets_close_notify (got $r)" [ "$r" = "0 clean" ]
r=$(peer full.test "$PE" read)
check "backend_slow_to_accept_times_out_with_close_notify (got $r)" [ "$r" = "0 clean" ]
r=$(peer reset.test "$PE" read)
check "backend_reset_mid_stream_is_not_a_clean_end (got $r)" [ "${r#* }" = truncated ]
check "backend_reset_mid_stream_after_data (got $r)" [ "${r% *}" -gt 0 ]
ok=0
for _ in 1 2 3 4 5 6; do [ "$(peer rr.test "$PE" pingpong 1)" = "ok 1" ] && ok=$((ok + 1)); done
check "round_robin_skips_the_backend_that_is_down ($ok/6)" [ "$ok" = 6 ]
check "backend_down_logged_once_per_state_change" [ "$(grep -c "backend 127.0.0.1:$DEAD2 down" "$T/E.log")" = 1 ]
closed0=$(grep -c '^echo: closed' "$T/echo.log")
peer echo.test "$PE" vanish >/dev/null
check "client_vanishes_backend_connection_closed" wait_for 10 "the echo backend sees its connection closed" \
    eval "[ \$(grep -c '^echo: closed' '$T/echo.log') -gt $closed0 ]"
r=$(peer echo.test "$PF" read)
check "idle_timeout_closes_a_silent_connection (got $r)" [ "$r" = "1 truncated" ]
check "ends_counted_by_cause" wait_for 10 "proxy_end_* counters" eval \
    'redis_stat_ge proxy_end_backend_refused 1 && redis_stat_ge proxy_end_backend_timeout 1 &&
     redis_stat_ge proxy_end_backend_reset 1 && redis_stat_ge proxy_end_client_gone 1 && redis_stat_ge proxy_end_idle 1 &&
     redis_stat_ge proxy_end_done 5'

echo "# ${SECONDS}s"
# --- resumption through the proxy on two nodes ----------------------------------------------
for v in 1.2 1.3; do
    s_get() {
        printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
            timeout 10 openssl s_client -connect "127.0.0.1:$1" "-tls1_${v#1.}" -servername a.example -ign_eof "${@:2}" 2>&1
    }
    s_get "$PE" -sess_out "$T/sess.$v" >"$T/s1.$v"
    s_get "$PF" -sess_in "$T/sess.$v" >"$T/s2.$v"
    check "tls$v: full handshake on node E, nginx answers" grep -q '^hello from nginx' "$T/s1.$v"
    check "tls$v: session from node E resumes on node F through the proxy" grep -q '^Reused, TLSv' "$T/s2.$v"
    check "tls$v: resumed connection reaches nginx" grep -q '^hello from nginx' "$T/s2.$v"
done

echo "# ${SECONDS}s"
# --- SIGTERM drains, ends with the stream -----------------------------------------------------
stop_pid "$NODE_PID_E"
check "node_E_stopped_cleanly" log_has "$T/E.log" 'draining'
finish
