#!/usr/bin/env bash
# The admin endpoints: /metrics agrees with tlscache-bench's own counts (during and after load)
# and with the Redis stats hashes, its exposition format is valid, a worker restart is counted
# and never makes a counter go backwards, /readyz follows Redis (503 with the reason while it is
# down), the admin port survives slow and idle clients and bad requests, --admin off binds
# nothing, a busy admin port stops the start; tlscache-daemon's --admin; --log-format json;
# no secret in any log or scrape.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3 curl ss
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
PROBE=$TLSC_BIN/cache-daemon/tlscache-keyd-probe
PROM="python3 $TLSC_ROOT/tests/lib/promcheck.py"
SECRET=$TLSC_TMP/cluster.secret
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET")
SCRAPES=$TLSC_TMP/scrapes
mkdir -p "$SCRAPES"
start_redis || exit 1

PA=$(free_port)
AA=$(free_port)
start_node A "$PA" --admin "127.0.0.1:$AA" --log-format json || exit 1

# scrape PORT NAME: GET /metrics into $SCRAPES/NAME; prints the HTTP status.
scrape() { curl -s -o "$SCRAPES/$2" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/metrics"; }
# metric PORT NAME LABEL=V...: one value from a fresh scrape (sum of the matching series).
metric() {
    local port=$1 f="$SCRAPES/m.$RANDOM"
    shift
    curl -s -o "$f" --max-time 5 "http://127.0.0.1:$port/metrics" && $PROM value "$f" "$@"
}
# metric_is PORT WANT NAME LABEL=V...: prints the value (for wait_for) and compares.
metric_is() {
    local port=$1 want=$2 v
    shift 2
    v=$(metric "$port" "$@")
    echo "$1 $*: $v (want $want)"
    [ "$v" = "$want" ]
}
# http_status PORT PATH [curl args]: the status of one request.
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${@:3}" "http://127.0.0.1:$1$2"; }
status_is() { local s; s=$(http_status "$1" "$2"); echo "GET $2: $s"; [ "$s" = "$3" ]; }

check "healthz_answers_200" [ "$(http_status "$AA" /healthz)" = 200 ]
check "readyz_200_once_every_worker_accepts_and_reaches_redis" wait_for 10 "node A ready" status_is "$AA" /readyz 200
scrape "$AA" idle >/dev/null
check "idle_scrape_is_valid_prometheus_text" $PROM check "$SCRAPES/idle"
check "build_info_names_the_versions" grep -Eq '^tlscache_build_info\{version="[^"]+",openssl="[^"]+",libuv="[^"]+",hiredis="[^"]+"\} 1$' "$SCRAPES/idle"

# --- under load: scrapes during a bench run are valid; after it, the counts agree ---------------
timeout 120 "$BENCH" --target "127.0.0.1:$PA" --tls 1.2 --mode id --connections 400 --concurrency 8 --sni a.example \
    --json "$TLSC_TMP/bench-a.json" >"$TLSC_TMP/bench-a.txt" 2>&1 &
bench_pid=$!
track "$bench_pid"
n=0
while kill -0 "$bench_pid" 2>/dev/null && [ "$n" -lt 40 ]; do
    n=$((n + 1))
    scrape "$AA" "during.$n" >/dev/null
done
wait "$bench_pid"
check "bench_ran_clean ($(jq -c .handshakes "$TLSC_TMP/bench-a.json"))" [ "$(jq '.errors.total == 0 and .handshakes.total == 400' "$TLSC_TMP/bench-a.json")" = true ]
check "scrapes_were_taken_during_the_load ($n)" [ "$n" -gt 0 ]
check "every_scrape_during_load_is_valid" $PROM check "$SCRAPES"/during.*
resumed=$(jq .handshakes.resumed "$TLSC_TMP/bench-a.json")
full=$(jq .handshakes.full "$TLSC_TMP/bench-a.json")
check "resumed_id_equals_the_bench_resumed_count ($resumed)" \
    wait_for 5 "metrics to count $resumed resumed" metric_is "$AA" "$resumed" tlscache_handshakes_total worker=all outcome~resumed_.*
scrape "$AA" after >/dev/null
mapfile -t v < <($PROM query "$SCRAPES/after" "tlscache_handshakes_total worker=all outcome=full" \
    "tlscache_handshakes_total worker~[0-9]+ outcome=resumed_id version=1.2" "tlscache_lookups_total worker=all outcome=hit" \
    "tlscache_handshake_duration_seconds_count worker=all" "tlscache_connections_accepted_total worker=all" \
    "tlscache_lookups_total worker=all outcome=l1_hit")
check "full_equals_the_bench_full_count ($full)" [ "${v[0]}" = "$full" ]
check "per_worker_series_add_up_to_the_bench_resumed_count" [ "${v[1]}" = "$resumed" ]
check "lookup_hits_redis_plus_l1_equal_resumed (${v[2]} + ${v[5]})" [ "$((v[2] + v[5]))" = "$resumed" ]
check "every_handshake_is_in_the_latency_histogram" [ "${v[3]}" = 400 ]
check "every_connection_was_accepted (${v[4]}: the bench's 400 and the test's port probes)" [ "${v[4]:-0}" -ge 400 ]
check "the_redis_stats_hash_says_the_same (handshakes_resumed)" \
    wait_for 5 "the stats hashes to reach $resumed" redis_stat_ge handshakes_resumed "$resumed"
check "the_redis_stats_hash_is_not_ahead" [ "$(redis_stat handshakes_resumed)" = "$resumed" ]

# --- a killed worker: restart counted, its counters kept in the slot's total ---------------------
victim=$(worker_pids "$NODE_PID_A" | head -1)
kill -KILL "$victim"
check "a_killed_worker_counts_as_a_restart" wait_for 10 "restarts 1" metric_is "$AA" 1 tlscache_worker_restarts_total worker=all
check "counters_do_not_go_backwards_across_a_restart" metric_is "$AA" "$resumed" tlscache_handshakes_total worker=all outcome=resumed_id
check "ready_again_after_the_respawn" wait_for 10 "node A ready" status_is "$AA" /readyz 200

# --- /readyz follows Redis -----------------------------------------------------------------------
old_redis=$REDIS_PID
kill -TERM "$old_redis"
check "readyz_503_while_redis_is_down" wait_for 15 "readyz 503" status_is "$AA" /readyz 503
body=$(curl -s --max-time 5 "http://127.0.0.1:$AA/readyz")
check "readyz_says_why ($(head -1 <<<"$body"))" grep -q "Redis not reached" <<<"$body"
check "redis_up_is_0_while_down" wait_for 5 "redis_up 0" metric_is "$AA" 0 tlscache_redis_up worker=all
check "healthz_stays_200_while_redis_is_down" [ "$(http_status "$AA" /healthz)" = 200 ]
wait_for 10 "the old Redis to exit" bash -c "! kill -0 $old_redis 2>/dev/null"
start_redis "$REDIS_PORT" || exit 1
check "readyz_200_when_redis_is_back" wait_for 15 "readyz 200" status_is "$AA" /readyz 200
reconnected() { local v; v=$(metric "$AA" tlscache_redis_reconnects_total worker=all); echo "reconnects: $v"; [ "${v:-0}" -ge 2 ]; }
check "reconnects_are_counted (both workers)" wait_for 5 "reconnects" reconnected

# --- hostile admin clients -------------------------------------------------------------------------
check "post_is_405" [ "$(http_status "$AA" /metrics -X POST)" = 405 ]
check "unknown_path_is_404" [ "$(http_status "$AA" /nope)" = 404 ]
check "head_has_no_body" [ "$(curl -s -I --max-time 5 "http://127.0.0.1:$AA/metrics" | grep -c '^tlscache_')" = 0 ]
check "an_oversized_request_head_is_431" [ "$(http_status "$AA" /metrics -H "X-Big: $(head -c 6000 /dev/zero | tr '\0' a)")" = 431 ]
# Slowloris: 40 connections (the cap is 16) that each sent half a request line and then nothing.
python3 - "$AA" "$TLSC_TMP/loris.ready" <<'PY' &
import socket, sys, time
socks = []
for _ in range(40):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /metr")
    socks.append(s)
open(sys.argv[2], "w").close()
time.sleep(20)
PY
loris=$!
track "$loris"
check "slowloris_connections_are_open" wait_for 10 "the slow clients" test -e "$TLSC_TMP/loris.ready"
check "metrics_answer_while_40_slow_clients_hold_connections" [ "$(scrape "$AA" loris)" = 200 ]
check "readyz_answers_too" [ "$(http_status "$AA" /readyz)" = 200 ]
kill "$loris" 2>/dev/null
check "the_master_kept_running" kill -0 "$NODE_PID_A"

# --- --admin off, a busy admin port, --check ---------------------------------------------------------
check "check_prints_admin_off" bash -c "'$SERVER_BIN' --check --admin off --cert '$TLSC_TMP/pki/a.pem' --key '$TLSC_TMP/pki/a.key' | grep -qx 'admin        off'"
PB=$(free_port)
start_node B "$PB" --admin off || exit 1
check "admin_off_logs_no_endpoint" bash -c "! grep -q 'admin endpoint' '$TLSC_TMP/B.log'"
# only_listens_on PID PORT: the process listens on PORT and nowhere else (prints what it holds).
only_listens_on() {
    local held
    held=$(ss -ltnpH 2>/dev/null | grep "pid=$1," | awk '{print $4}' | sort -u | tr '\n' ' ')
    echo "pid $1 listens on: ${held:-nothing}"
    [ "$held" = "127.0.0.1:$2 " ]
}
check "admin_off_binds_nothing_but_the_tls_port" only_listens_on "$NODE_PID_B" "$PB"
stop_pid "$NODE_PID_B"
out=$("$SERVER_BIN" --listen "127.0.0.1:$(free_port)" --workers 1 --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/a.key" \
    --admin "127.0.0.1:$AA" 2>&1)
rc=$?
check "a_busy_admin_port_stops_the_start (rc=$rc: $out)" [ "$rc/$(grep -c "admin 127.0.0.1:$AA: address already in use" <<<"$out")" = 1/1 ]

# --- tickets: the key window on the server, and the daemon's own admin endpoint -----------------
KD=$(free_port)
DA=$(free_port)
"$DAEMON" --listen "127.0.0.1:$KD" --secret-file "$SECRET" --node D --grace-ms 300 --admin "127.0.0.1:$DA" --log-format json \
    >>"$TLSC_TMP/daemon-D.log" 2>&1 &
DPID=$!
track "$DPID"
wait_port "$KD" 10
PC=$(free_port)
AC=$(free_port)
start_node C "$PC" --admin "127.0.0.1:$AC" --keyd "127.0.0.1:$KD" --keyd-secret-file "$SECRET" --resumption tickets \
    --log-format json || exit 1
check "daemon_readyz_200_after_its_grace" wait_for 10 "daemon ready" status_is "$DA" /readyz 200
check "tickets_node_ready_once_it_holds_keys" wait_for 15 "node C ready" status_is "$AC" /readyz 200
check "daemon_counts_both_workers" wait_for 10 "2 workers" metric_is "$DA" 2 tlscache_daemon_workers_connected
check "daemon_workers_acked_the_current_epoch" wait_for 10 "0 behind" metric_is "$DA" 0 tlscache_daemon_workers_behind
scrape "$DA" daemon >/dev/null
check "daemon_scrape_is_valid_prometheus_text" $PROM check "$SCRAPES/daemon"
mapfile -t v < <($PROM query "$SCRAPES/daemon" "tlscache_daemon_keys role=current" "tlscache_daemon_keys role=next" \
    tlscache_daemon_epoch)
check "daemon_shows_a_current_and_a_next_key" [ "${v[0]}/${v[1]}" = 1/1 ]
epoch=${v[2]}
check "server_workers_report_the_daemons_epoch ($epoch)" wait_for 5 "epoch" metric_is "$AC" "$epoch" tlscache_ticket_key_epoch worker=1
scrape "$AC" keys >/dev/null
mapfile -t v < <($PROM query "$SCRAPES/keys" "tlscache_ticket_keys worker=1" "tlscache_ticket_key_expires_in_seconds worker=1")
check "server_shows_the_key_window (${v[0]} keys)" [ "${v[0]:-0}" -ge 2 ]
check "current_key_expires_in_the_future (${v[1]} s)" [ "${v[1]:-0}" -gt 0 ]
timeout 120 "$BENCH" --target "127.0.0.1:$PC" --tls 1.3 --mode ticket --connections 100 --concurrency 4 --sni a.example \
    --json "$TLSC_TMP/bench-c.json" >"$TLSC_TMP/bench-c.txt" 2>&1
resumed=$(jq .handshakes.resumed "$TLSC_TMP/bench-c.json")
check "bench_resumed_tickets ($resumed)" [ "${resumed:-0}" -ge 50 ]
check "resumed_ticket_equals_the_bench_resumed_count" \
    wait_for 5 "resumed_ticket $resumed" metric_is "$AC" "$resumed" tlscache_handshakes_total worker=all version=1.3 mode=tickets outcome=resumed_ticket
keys=$("$PROBE" --connect "127.0.0.1:$KD" --secret-file "$SECRET" --once --print-secrets |
    awk '/^secret /{sub("name=","",$2); sub("secret=","",$3); print "key", $2, $3}')
check "the_probe_fetched_the_daemons_keys_to_look_for" [ "$(grep -c '^key' <<<"$keys")" -ge 2 ]
kill -TERM "$DPID"
check "daemon_stops_on_sigterm" wait_for 10 "daemon gone" bash -c "! kill -0 $DPID 2>/dev/null"
check "readyz_stays_200_while_the_held_keys_last (daemon gone)" status_is "$AC" /readyz 200

# --- JSON logs, and no secret anywhere -----------------------------------------------------------
stop_pid "$NODE_PID_C"
stop_pid "$NODE_PID_A"
# json_lines FILE...: every line of every file is one JSON object with the fields; prints what is wrong.
json_lines() {
    python3 - "$@" <<'PY'
import json, sys
bad = 0
for path in sys.argv[1:]:
    workers = set()
    lines = open(path, encoding="utf-8", errors="strict").read().splitlines()
    for l in lines:
        try:
            o = json.loads(l)
            assert isinstance(o, dict) and {"ts", "level", "tag", "pid", "worker", "msg"} <= o.keys() and isinstance(o["pid"], int)
            workers.add(o["worker"])
        except Exception as e:
            bad += 1
            print("not a log object:", l[:200], e)
    bad += not lines
    print(f"{path}: {len(lines)} lines, workers {sorted(workers)}")
sys.exit(1 if bad else 0)
PY
}
check "node_and_daemon_logs_are_json_lines" json_lines "$TLSC_TMP/A.log" "$TLSC_TMP/C.log" "$TLSC_TMP/daemon-D.log"
check "node_logs_name_master_and_workers" bash -c "grep -q '\"worker\":\"master\"' '$TLSC_TMP/A.log' && grep -q '\"worker\":\"1\"' '$TLSC_TMP/A.log'"
check "text_logs_carry_pid_and_worker" grep -Eq '^[0-9T:.-]+Z tlscache-server\[B\] pid=[0-9]+ worker=master info: ' "$TLSC_TMP/B.log"
mkdir -p "$TLSC_TMP/scan"
cp "$TLSC_TMP"/*.log "$SCRAPES"/* "$TLSC_TMP/scan/"
secrets="raw $(cat "$SECRET")"$'\n'"raw $(cat "$TLSC_TMP/seal.secret")"$'\n'"$keys"
check "no_ticket_key_cluster_or_seal_secret_in_any_log_or_scrape" \
    python3 "$TLSC_ROOT/tests/lib/scan_secrets.py" "$REDIS_PORT" "$TLSC_TMP/scan" <<<"$secrets"
finish
