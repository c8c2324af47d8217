#!/usr/bin/env bash
# tlscache-bench against tlscache itself: two nodes on one Redis, sessions from either node
# resume on the other (every cell of the matrix), and the numbers the bench prints agree with
# the servers' own counters in Redis, read through --redis.
# Two pairs of nodes on the same Redis, apart by key prefix:
#   A, B   the server's default --lookup-timeout / --store-timeout (10 / 50 ms), what users get
#          (ctest label "defaults", run on the optimized build; a sanitizer build runs them with
#          GENEROUS_TIMEOUTS=1): the counters agree exactly, cross-node resumption works in every
#          cell, and most offered sessions resume (a lookup that misses its budget on a loaded
#          machine is counted by the servers, and the bench's figures still agree with theirs);
#   C, D   generous timeouts (200 / 500 ms) always: every offered session resumes.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
[ -x "$BENCH" ] || { echo "no $BENCH (set TLSC_BIN or BENCH)" >&2; exit 1; }
[ -x "$SERVER_BIN" ] || { echo "no $SERVER_BIN (set TLSC_BIN or SERVER_BIN)" >&2; exit 1; }
start_redis || exit 1
PA=$(free_port)
PB=$(free_port)
PC=$(free_port)
PD=$(free_port)
start_node A "$PA" || exit 1
start_node B "$PB" || exit 1
GENEROUS_TIMEOUTS=1 start_node C "$PC" --redis-prefix slow || exit 1
GENEROUS_TIMEOUTS=1 start_node D "$PD" --redis-prefix slow || exit 1

# every_worker_published PREFIX N: N per-worker stats hashes exist under PREFIX (the first
# publication, so the bench's "before" snapshot has every worker).
every_worker_published() {
    local keys
    keys=$(redis-cli -p "$REDIS_PORT" --scan --pattern "$1:stats:*" | sort | tr '\n' ' ')
    echo "stats hashes: ${keys:-none}"
    [ "$(wc -w <<<"$keys")" -ge "$2" ]
}
check "every_worker_publishes_its_stats" wait_for 10 "the 4 workers' first stats" every_worker_published tlscache 4
check "every_worker_publishes_its_stats_under_another_prefix" \
    wait_for 10 "the 4 workers' first stats under slow:" every_worker_published slow 4

j() { jq -r "$2" "$TLSC_TMP/$1.json"; }
AB=at_default_timeouts
[ "${GENEROUS_TIMEOUTS:-0}" = 1 ] && AB=at_generous_timeouts

# bench NAME PORT1 PORT2 PREFIX TLS: 400 connections over two nodes, JSON in $TLSC_TMP/NAME.json.
bench() {
    timeout 60 "$BENCH" --target "127.0.0.1:$2" --target "127.0.0.1:$3" --balance random --seed 3 --tls "$5" --mode id \
        --connections 400 --concurrency 8 --sni a.example --redis "redis://127.0.0.1:$REDIS_PORT" --redis-prefix "$4" \
        --redis-settle 2500 --json "$TLSC_TMP/$1.json" >"$TLSC_TMP/$1.txt" 2>&1
}
# agree NAME NODES: the bench's figures and the servers' own counters agree.
agree() {
    local r=$1 nodes=$2 v=$3
    check "tls${v}_bench_and_server_stats_agree_on_full_and_resumed ($r)" \
        [ "$(j "$r" '[.handshakes.full, .handshakes.resumed] == [.server.total.handshakes_full, .server.total.handshakes_resumed]')" = true ]
    check "tls${v}_server_lookup_hits_l1_plus_redis_equal_resumed ($r)" [ "$(j "$r" '.server.total.lookups_hit + .server.total.lookups_l1_hit == .handshakes.resumed')" = true ]
    check "tls${v}_server_view_has_both_nodes ($r)" [ "$(j "$r" '[.server.nodes[].node] | sort | join(",")')" = "$nodes" ]
    check "tls${v}_table_says_agree ($r)" grep -q "(agree)" "$TLSC_TMP/$r.txt"
}

for v in 1.2 1.3; do
    # --- A, B: the server's default timeouts (unless GENEROUS_TIMEOUTS=1) ---
    bench "r$v" "$PA" "$PB" tlscache "$v"
    agree "r$v" A,B "$v"
    check "tls${v}_${AB}_most_offered_sessions_resume ($(j "r$v" '"\(.resumption.resumed)/\(.resumption.offered)"'))" \
        [ "$(j "r$v" '.resumption.offered >= 392 and .resumption.rate >= 0.8 and .errors.total == 0')" = true ]
    check "tls${v}_${AB}_every_cell_of_the_matrix_resumes" \
        [ "$(j "r$v" '[.matrix[] | .offered > 0 and .resumed > 0] | all')" = true ]
    # --- generous timeouts ---
    bench "g$v" "$PC" "$PD" slow "$v"
    agree "g$v" C,D "$v"
    check "tls${v}_every_offered_session_resumes_across_two_nodes" \
        [ "$(j "g$v" '.resumption.offered >= 392 and .resumption.resumed == .resumption.offered and .errors.total == 0')" = true ]
    check "tls${v}_every_cell_of_the_matrix_resumes" [ "$(j "g$v" '[.matrix[] | .offered > 0 and .resumed == .offered] | all')" = true ]
done
finish
