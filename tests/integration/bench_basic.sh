#!/usr/bin/env bash
# tlscache-bench against servers whose behaviour is known (openssl s_server): all-full when the
# server cannot resume, every offered session resumed when it can, only the diagonal of the
# matrix for two servers that share nothing, JSON/CSV/PNG outputs that agree with the printed
# table, dead and silent targets reported as errors within the run's time bound, and the
# Redis stats read before/after the run.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
need openssl jq python3 gnuplot redis-server redis-cli
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
[ -x "$BENCH" ] || { echo "no $BENCH (set TLSC_BIN or BENCH)" >&2; exit 1; }
PKI=$TLSC_TMP/pki
OUT=$TLSC_TMP/out
mkdir -p "$OUT"

# s_server NAME [flags...]: an openssl s_server on a free port with -www; sets PORT_<NAME>.
s_server() {
    local name=$1 port
    shift
    port=$(free_port)
    openssl s_server -accept "127.0.0.1:$port" -cert "$PKI/default.pem" -key "$PKI/default.key" -www -quiet \
        -naccept 100000 "$@" >"$TLSC_TMP/$name.log" 2>&1 &
    track $!
    printf -v "PORT_$name" '%s' "$port"
    wait_port "$port" 10
}

# bench NAME [flags...]: runs the tool with a JSON report into $OUT/NAME.json and the table
# into $OUT/NAME.txt; every run is bounded by `timeout` as well as by its own deadline.
bench() {
    local name=$1
    shift
    timeout 60 "$BENCH" --json "$OUT/$name.json" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"
    BENCH_RC=$?
}

# j NAME FILTER: a value from a run's JSON report.
j() { jq -r "$2" "$OUT/$1.json"; }

# now_ms: wall clock in milliseconds (bash's EPOCHREALTIME, no bc).
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

s_server off -no_cache -no_ticket
s_server on
s_server other
s_server tix -no_cache
s_server noticket13 -num_tickets 0

# --- a server that cannot resume: every handshake full, rate 0 ------------------------------
bench off13 --target "127.0.0.1:$PORT_off" --connections 60 --concurrency 4 --tls 1.3
check "resumption_off_tls13_offers_are_all_full" \
    [ "$(j off13 '.handshakes.full == 60 and .handshakes.resumed == 0 and .resumption.rate == 0 and .resumption.offered > 50')" = true ]
bench off12 --target "127.0.0.1:$PORT_off" --connections 60 --concurrency 4 --tls 1.2 --mode ticket
check "resumption_off_tls12_is_all_full" [ "$(j off12 '[.handshakes.full, .handshakes.resumed] | @tsv')" = "$(printf '60\t0')" ]

# --- a server that resumes: every offered session resumed -------------------------------------
for spec in "1.2 id on" "1.2 ticket tix" "1.3 id on" "1.3 ticket on"; do
    set -- $spec
    name=on_$1_$2
    port_var=PORT_$3
    bench "$name" --target "127.0.0.1:${!port_var}" --connections 100 --concurrency 4 --tls "$1" --mode "$2"
    check "resumption_on_tls$1_$2_resumes_every_offer" \
        [ "$(j "$name" '.resumption.offered >= 96 and .resumption.resumed == .resumption.offered and .resumption.rate == 1
                        and .handshakes.full + .handshakes.resumed == 100 and .errors.total == 0')" = true ]
done
# A TLS 1.2 server without a session cache gives no session ID: id mode has nothing to offer.
bench noid12 --target "127.0.0.1:$PORT_tix" --connections 20 --concurrency 2 --tls 1.2 --mode id
check "tls12_id_mode_against_cacheless_server_offers_nothing" \
    [ "$(j noid12 '.resumption.offered == 0 and .handshakes.full == 20 and .resumption.rate == null')" = true ]
bench mix --target "127.0.0.1:$PORT_on" --connections 100 --concurrency 1 --tls 1.2 --new-session-every 4
check "new_session_every_4_gives_one_full_in_four" \
    [ "$(j mix '[.handshakes.full, .handshakes.resumed, .resumption.offered] | @tsv')" = "$(printf '25\t75\t75')" ]
# A TLS 1.3 server that sends no ticket costs at most two ticket waits, not one per connection.
bench notix --target "127.0.0.1:$PORT_noticket13" --connections 40 --concurrency 2 --tls 1.3 --ticket-wait 300
check "tls13_server_without_tickets_is_all_full_and_quick" \
    [ "$(j notix '.handshakes.full == 40 and .resumption.offered == 0 and .resumption.ticket_wait_skipped and .elapsed_sec < 5')" = true ]

# --- two servers that share nothing: only the diagonal resumes --------------------------------
for v in 1.2 1.3; do
    bench two$v --target "127.0.0.1:$PORT_on" --target "127.0.0.1:$PORT_other" --balance random --seed 7 \
        --connections 200 --concurrency 2 --tls $v
    check "tls${v}_two_servers_sharing_nothing_resume_only_on_the_diagonal" \
        [ "$(j two$v '[.matrix[] | select(.issuer != .target) | .resumed] | add') $(j two$v \
            '[.matrix[] | select(.issuer == .target) | (.resumed == .offered and .offered > 0)] | all') $(j two$v \
            '[.matrix[] | select(.issuer != .target) | .offered] | add > 0')" = "0 true true" ]
done
# Round robin with one connection at a time always offers the other server's session.
bench rr --target "127.0.0.1:$PORT_on" --target "127.0.0.1:$PORT_other" --balance rr --connections 40 --concurrency 1 --tls 1.2
check "rr_over_two_servers_sharing_nothing_never_resumes" \
    [ "$(j rr '.resumption.offered == 39 and .handshakes.resumed == 0')" = true ]

# --- the JSON is valid and says what the table says --------------------------------------------
check "json_is_parseable" python3 -m json.tool "$OUT/two1.3.json" /dev/null
json_agrees_with_table() {
    local name=$1 t="$OUT/$1.txt"
    local full resumed offered conns errs
    full=$(awk '$1 == "full" {print $2; exit}' "$t")
    resumed=$(awk '$1 == "resumed" {print $2; exit}' "$t")
    offered=$(sed -n 's/^resumption: [0-9]* resumed \/ \([0-9]*\) offered.*/\1/p' "$t")
    conns=$(sed -n 's/^  \([0-9]*\) connections in.*/\1/p' "$t")
    errs=$(sed -n 's/^errors: \([0-9]*\).*/\1/p' "$t")
    [ "$full $resumed $offered $conns $errs" = \
        "$(j "$name" '[.handshakes.full, .handshakes.resumed, .resumption.offered, .connections, .errors.total] | join(" ")')" ] &&
        [ "$(j "$name" '[.targets[].full] | add') $(j "$name" '[.matrix[].offered] | add')" = "$full $offered" ]
}
check "json_agrees_with_the_printed_table" json_agrees_with_table two1.3
check "json_agrees_with_the_printed_table_tls12" json_agrees_with_table on_1.2_id
check "json_latency_percentiles_are_ordered" \
    [ "$(j on_1.3_id '.latency_ms.resumed | .min <= .p50 and .p50 <= .p90 and .p90 <= .p99 and .p99 <= .p99_9 and .p99_9 <= .max')" = true ]
check "json_reports_negotiated_tls13" [ "$(j on_1.3_id '.negotiated[0].version')" = TLSv1.3 ]
check "json_timeline_sums_to_the_handshakes" \
    [ "$(j two1.2 '([.timeline[] | .full + .resumed] | add) == .handshakes.total')" = true ]

# --- CSV appends one row per run; PNG is a PNG -------------------------------------------------
bench csv1 --target "127.0.0.1:$PORT_on" --connections 20 --concurrency 2 --csv "$OUT/runs.csv" --label 's_server,"x"' \
    --plot "$OUT/plot.png"
bench csv2 --target "127.0.0.1:$PORT_on" --connections 20 --concurrency 2 --csv "$OUT/runs.csv"
check "csv_has_header_and_one_row_per_run" [ "$(wc -l <"$OUT/runs.csv")" = 3 ]
check "csv_rows_have_the_header_field_count" python3 - "$OUT/runs.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert all(len(r) == len(rows[0]) for r in rows), rows
d = dict(zip(rows[0], rows[1]))
assert d["label"] == 's_server,"x"' and int(d["full"]) + int(d["resumed"]) == 20, d
PY
check "plot_writes_a_png" [ "$(head -c 8 "$OUT/plot.png" | od -An -c | tr -d ' ')" = '211PNG\r\n032\n' ]

# --- certificate verification -------------------------------------------------------------------
bench verify_ok --target "127.0.0.1:$PORT_on" --connections 10 --concurrency 2 --cafile "$PKI/ca.pem" --sni localhost
check "cafile_verifies_a_good_certificate" [ "$(j verify_ok '.config.verify and .errors.total == 0 and .handshakes.total == 10')" = true ]
bench verify_bad --target "127.0.0.1:$PORT_on" --connections 10 --concurrency 2 --cafile "$PKI/ca.pem" --sni a.example
check "cafile_rejects_a_wrong_name_as_verify_errors" [ "$(j verify_bad '.errors.verify == 10 and .handshakes.total == 0')" = true ]
check "no_successful_handshake_exits_1" [ "$BENCH_RC" = 1 ]
check "without_cafile_the_report_says_not_verified" grep -q "NOT verified" "$OUT/on_1.2_id.txt"

# --- HTTP request -------------------------------------------------------------------------------
bench req --target "127.0.0.1:$PORT_on" --connections 30 --concurrency 3 --request --tls 1.3
check "request_reads_every_reply_and_still_resumes" \
    [ "$(j req '.http_replies == 30 and .resumption.resumed == .resumption.offered and .resumption.offered >= 27')" = true ]

# --- dead and silent targets: errors, and the run ends within its bound --------------------------
dead=$(free_port)
start=$(now_ms)
bench dead --target "127.0.0.1:$dead" --duration 2 --timeout 1000 --concurrency 4
took=$(($(now_ms) - start))
check "dead_target_is_connect_errors" [ "$(j dead '.errors.connect > 0 and .errors.connect == .connections and .handshakes.total == 0')" = true ]
check "dead_target_run_ends_within_duration_plus_timeout (took $took ms, bound 3500)" [ "$took" -lt 3500 ]
check "dead_target_exits_1" [ "$BENCH_RC" = 1 ]
bench deadmix --target "127.0.0.1:$PORT_on" --target "127.0.0.1:$dead" --connections 40 --concurrency 2 --tls 1.2
check "dead_target_among_live_ones_is_an_error_row" \
    [ "$(j deadmix '[.targets[1].errors.connect, .targets[0].connections, .targets[0].errors.connect, .handshakes.total] | join(" ")')" = "20 20 0 20" ]
check "dead_target_among_live_ones_exits_0" [ "$BENCH_RC" = 0 ]
check "dead_target_shows_in_the_table" grep -q "first connect error: 127.0.0.1:$dead: connection refused" "$OUT/deadmix.txt"

silent=$(free_port)
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $silent)); s.listen(64); time.sleep(60)" &
track $!
wait_port "$silent" 10
start=$(now_ms)
bench silent --target "127.0.0.1:$silent" --connections 6 --concurrency 3 --timeout 500
took=$(($(now_ms) - start))
check "silent_target_is_timeout_errors" [ "$(j silent '.errors.timeout == 6 and .connections == 6')" = true ]
check "silent_target_run_ends_within_its_bound (took $took ms, bound 3000)" [ "$took" -lt 3000 ]
start=$(now_ms)
bench silentdur --target "127.0.0.1:$silent" --duration 1 --concurrency 2 --timeout 800
took=$(($(now_ms) - start))
check "silent_target_with_duration_ends_within_duration_plus_timeout (took $took ms, bound 3000)" [ "$took" -lt 3000 ]

# --- Redis stats: read before and after, outside the timed part ---------------------------------
start_redis || exit 1
redis-cli -p "$REDIS_PORT" hset tlscache:stats:n1:1 handshakes_full 5 handshakes_resumed 1 >/dev/null
redis-cli -p "$REDIS_PORT" hset tlscache:stats:n1:2 handshakes_full 1 >/dev/null
redis-cli -p "$REDIS_PORT" hset other:stats:n1:1 handshakes_full 1000 >/dev/null
# before_read_done: the bench has read the "before" stats (its HMGETs of the 2 hashes reached Redis).
before_read_done() {
    local n
    n=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_hmget:calls=\([0-9]*\).*/\1/p')
    echo "HMGET calls: ${n:-0}"
    [ "${n:-0}" -ge 2 ]
}
# The servers' counters move during the run: after the bench's first read, before its last.
( wait_for 10 "the bench's first stats read" before_read_done &&
  redis-cli -p "$REDIS_PORT" hincrby tlscache:stats:n1:2 handshakes_resumed 9 >/dev/null &&
  redis-cli -p "$REDIS_PORT" hset tlscache:stats:n2:1 handshakes_full 1 lookups_hit 9 >/dev/null ) &
track $!
bench redis --target "127.0.0.1:$PORT_on" --connections 10 --concurrency 1 --tls 1.2 \
    --redis "redis://127.0.0.1:$REDIS_PORT" --redis-settle 1500
check "redis_stats_are_summed_per_node_and_diffed" \
    [ "$(j redis '[.server.nodes[] | "\(.node):\(.workers):\(.handshakes_full):\(.handshakes_resumed):\(.lookups_hit)"] | join(" ")')" = \
      "n1:2:0:9:0 n2:1:1:0:9" ]
check "redis_server_view_is_printed" grep -q "servers counted full 1, resumed 9" "$OUT/redis.txt"
bench redis_down --target "127.0.0.1:$PORT_on" --connections 5 --concurrency 1 --redis "redis://127.0.0.1:$(free_port)"
check "unreachable_redis_is_reported_not_fatal" [ "$BENCH_RC/$(j redis_down '.server.error | test("--redis")')" = 0/true ]

# --- issue 14: failures apart from the rates, certificate, matrix hint, server view columns -----
dead_hs_line() { grep -q "^  $(j dead .connections) connections in [0-9.]* s: 0 succeeded (0.0 handshakes/s), $(j dead .connections) failed," "$OUT/dead.txt"; }
check "dead_target_rate_is_0_handshakes_per_sec_and_failures_are_shown_apart" dead_hs_line
check "dead_target_json_counts_failed_connections_apart" \
    [ "$(j dead '.connections > 0 and .connections_failed == .connections and .connections_succeeded == 0 and .handshakes.total_per_sec == 0')" = true ]
check "dead_target_is_not_called_client_bound" bash -c "! grep -q client-bound '$OUT/dead.txt'"
check "every_verification_failed_is_not_called_verified" \
    bash -c "! grep -q 'certificate verified' '$OUT/verify_bad.txt' && grep -q 'certificate REJECTED' '$OUT/verify_bad.txt'"
check "good_certificate_is_called_verified_on_every_handshake" grep -q "certificate verified (--cafile) on 10 handshakes$" "$OUT/verify_ok.txt"
check "json_certificate_counts_rejections" [ "$(j verify_bad '[.certificate.checked, .certificate.verified, .certificate.rejected] | join(" ")')" = "true 0 10" ]
check "two_servers_sharing_nothing_get_a_hint" grep -q "targets do not share sessions: check --cluster, --redis-prefix, --keyd" "$OUT/two1.2.txt"
check "json_counts_the_pairs_that_share_nothing" [ "$(j two1.2 .resumption.unshared_pairs)" = 2 ]
check "one_server_gets_no_sharing_hint" bash -c "! grep -q 'do not share sessions' '$OUT/on_1.2_id.txt'"
# A worker whose ticket and records_bad counters move during the run (a node new since the first
# read counts from zero): created once the bench has SCANned for the "before" snapshot.
scans() { redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_scan:calls=\([0-9]*\).*/\1/p'; }
scans0=$(scans)
( for _ in $(seq 100); do [ "$(scans)" -gt "${scans0:-0}" ] && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" hset t14:stats:n9:1 handshakes_full 1 records_bad 3 tickets_issued 4 tickets_decrypted 5 \
      tickets_renewed 6 tickets_unknown_key 7 >/dev/null ) &
track $!
bench redis_tickets --target "127.0.0.1:$PORT_on" --connections 4 --concurrency 1 --tls 1.2 \
    --redis "redis://127.0.0.1:$REDIS_PORT" --redis-prefix t14 --redis-settle 1500
check "server_view_json_has_ticket_and_records_bad_counters" \
    [ "$(j redis_tickets '.server.nodes[] | select(.node == "n9") | [.records_bad, .tickets_issued, .tickets_decrypted, .tickets_renewed, .tickets_unknown_key] | join(" ")')" = "3 4 5 6 7" ]
check "server_view_table_has_ticket_and_records_bad_columns" \
    bash -c "grep -q ' rec_bad\$' '$OUT/redis_tickets.txt' && grep -Eq '^  n9 +1 +4 +5 +6 +7\$' '$OUT/redis_tickets.txt'"

# --redis takes no password on argv (ps shows it): the password comes from --redis-pass-file or
# TLSCACHE_REDIS_PASS, and an ACL user reads the counters with either. rediss:// without
# --redis-ca is refused before any connection (ctl_cluster.sh and ctl.sh test the forms beyond
# one plain node: the stats reader is tlscache-ctl's client).
redis-cli -p "$REDIS_PORT" acl setuser benchro on '>bench pass 1' '~*' +@read +@connection >/dev/null
bench pw_argv --target "127.0.0.1:$PORT_on" --connections 1 --redis "redis://benchro:bench%20pass%201@127.0.0.1:$REDIS_PORT"
check "redis_password_on_argv_is_refused_with_exit_2" [ "$BENCH_RC" = 2 ]
check "the_refusal_names_the_alternatives_and_not_the_password" \
    bash -c "grep -q -- '--redis-pass-file FILE or TLSCACHE_REDIS_PASS' '$OUT/pw_argv.err' && ! grep -Eq 'bench( |%20)pass' '$OUT/pw_argv.err'"
bench pw_flag --target "127.0.0.1:$PORT_on" --connections 1 --redis-pass 'bench pass 1'
check "a_redis_pass_flag_is_refused_with_exit_2" [ "$BENCH_RC/$(grep -c 'bench pass' "$OUT/pw_flag.err")" = 2/0 ]
bench pw_tls --target "127.0.0.1:$PORT_on" --connections 1 --redis "rediss://127.0.0.1:$REDIS_PORT"
check "rediss_without_redis_ca_is_refused_naming_it" [ "$BENCH_RC/$(grep -c -- 'needs --redis-ca FILE' "$OUT/pw_tls.err")" = 2/1 ]
bench pw_ca --target "127.0.0.1:$PORT_on" --connections 1 --redis "redis://127.0.0.1:$REDIS_PORT" --redis-ca "$TLSC_TMP/ca.pem"
check "redis_ca_without_a_tls_url_is_refused" [ "$BENCH_RC/$(grep -c -- '--redis-ca: given, but --redis is not a TLS URL' "$OUT/pw_ca.err")" = 2/1 ]
(umask 077 && printf 'bench pass 1\n' >"$TLSC_TMP/redis.pass")
bench pw_file --target "127.0.0.1:$PORT_on" --connections 2 --concurrency 1 --redis "redis://benchro@127.0.0.1:$REDIS_PORT" \
    --redis-pass-file "$TLSC_TMP/redis.pass" --redis-settle 0
check "redis_pass_file_authenticates_the_stats_reader" [ "$BENCH_RC/$(j pw_file '.server.error // "none"')" = 0/none ]
TLSCACHE_REDIS_PASS='bench pass 1' bench pw_env --target "127.0.0.1:$PORT_on" --connections 2 --concurrency 1 \
    --redis "redis://benchro@127.0.0.1:$REDIS_PORT" --redis-settle 0
check "TLSCACHE_REDIS_PASS_authenticates_the_stats_reader" [ "$BENCH_RC/$(j pw_env '.server.error // "none"')" = 0/none ]
bench pw_none --target "127.0.0.1:$PORT_on" --connections 2 --concurrency 1 --redis "redis://benchro@127.0.0.1:$REDIS_PORT" \
    --redis-settle 0
check "a_user_without_a_password_is_a_stats_error_naming_the_alternatives" \
    [ "$(j pw_none '.server.error | test("--redis-pass-file FILE or TLSCACHE_REDIS_PASS")')" = true ]

# gnuplot fails on an empty log axis: a run where no handshake completed still gets its plot.
bench deadplot --target "127.0.0.1:$dead" --connections 20 --concurrency 2 --plot "$OUT/dead.png"
check "dead_target_run_still_writes_its_plot" \
    bash -c "! grep -q 'gnuplot failed' '$OUT/deadplot.err' && [ \"\$(head -c 4 '$OUT/dead.png' | od -An -c | tr -d ' ')\" = 211PNG ]"

finish
