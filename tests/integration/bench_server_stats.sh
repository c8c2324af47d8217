#!/usr/bin/env bash
# tlscache-bench against tlscache itself: two nodes on one Redis, sessions from either node
# resume on the other (every cell of the matrix), and the numbers the bench prints agree with
# the servers' own counters in Redis, read through --redis.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
[ -x "$BENCH" ] || { echo "no $BENCH (set TLSC_BIN or BENCH)" >&2; exit 1; }
[ -x "$SERVER_BIN" ] || { echo "no $SERVER_BIN (set TLSC_BIN or SERVER_BIN)" >&2; exit 1; }
start_redis || exit 1
PA=$(free_port)
PB=$(free_port)
start_node A "$PA" || exit 1
start_node B "$PB" || exit 1
sleep 1.5 # the first stats publication, so "before" has every worker

j() { jq -r "$2" "$TLSC_TMP/$1.json"; }

for v in 1.2 1.3; do
    timeout 60 "$BENCH" --target "127.0.0.1:$PA" --target "127.0.0.1:$PB" --balance random --seed 3 --tls $v --mode id \
        --connections 400 --concurrency 8 --sni a.example --redis "redis://127.0.0.1:$REDIS_PORT" --redis-settle 2500 \
        --json "$TLSC_TMP/r$v.json" >"$TLSC_TMP/r$v.txt" 2>&1
    check "tls${v}_every_offered_session_resumes_across_two_nodes" \
        [ "$(j r$v '.resumption.offered >= 392 and .resumption.resumed == .resumption.offered and .errors.total == 0')" = true ]
    check "tls${v}_every_cell_of_the_matrix_resumes" [ "$(j r$v '[.matrix[] | .offered > 0 and .resumed == .offered] | all')" = true ]
    check "tls${v}_bench_and_server_stats_agree_on_full_and_resumed" \
        [ "$(j r$v '[.handshakes.full, .handshakes.resumed] == [.server.total.handshakes_full, .server.total.handshakes_resumed]')" = true ]
    check "tls${v}_server_lookup_hits_equal_resumed" [ "$(j r$v '.server.total.lookups_hit == .handshakes.resumed')" = true ]
    check "tls${v}_server_view_has_both_nodes" [ "$(j r$v '[.server.nodes[].node] | sort | join(",")')" = A,B ]
    check "tls${v}_table_says_agree" grep -q "(agree)" "$TLSC_TMP/r$v.txt"
done
finish
