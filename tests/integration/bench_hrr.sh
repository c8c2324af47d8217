#!/usr/bin/env bash
# The bench matrix's HelloRetryRequest case (bench/compare.sh, mode "hrr"), against tlscache:
# two nodes with --groups P-256 only, tlscache-bench offering X25519 first, then P-256, so every
# handshake (full and resumed) goes through a HelloRetryRequest and a second ClientHello. TLS
# 1.3 stateful tickets must still resume 100 % in every cell of the matrix, and the servers'
# lookup hits must equal the resumptions (the second ClientHello is not a second lookup).
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
BENCH=${BENCH:-$TLSC_BIN/bench/tlscache-bench}
[ -x "$BENCH" ] || { echo "no $BENCH (set TLSC_BIN or BENCH)" >&2; exit 1; }
start_redis || exit 1
PA=$(free_port)
PB=$(free_port)
# Generous store timeouts: this is about the handshake, not about a loaded machine's Redis.
GENEROUS_TIMEOUTS=1 start_node A "$PA" --groups P-256 || exit 1
GENEROUS_TIMEOUTS=1 start_node B "$PB" --groups P-256 || exit 1

# every_worker_published N: N per-worker stats hashes exist (the bench's "before" has them all).
every_worker_published() {
    local n
    n=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:stats:*' | wc -l)
    echo "stats hashes: $n"
    [ "$n" -ge "$1" ]
}
check "every_worker_publishes_its_stats" wait_for 10 "the 4 workers' first stats" every_worker_published 4

j() { jq -r "$1" "$TLSC_TMP/hrr.json"; }
# What bench/compare.sh runs for an hrr row, bounded in connections and time.
timeout 90 "$BENCH" --target "127.0.0.1:$PA" --target "127.0.0.1:$PB" --balance random --seed 5 --tls 1.3 --mode id \
    --groups X25519:P-256 --connections 200 --concurrency 4 --sni a.example --ticket-wait 300 \
    --redis "redis://127.0.0.1:$REDIS_PORT" --redis-settle 2500 --json "$TLSC_TMP/hrr.json" >"$TLSC_TMP/hrr.txt" 2>&1
echo "# bench: $(j '"offered \(.resumption.offered), resumed \(.resumption.resumed), errors \(.errors.total), groups \([.negotiated[].group] | unique | join(","))"')"
check "the_run_completes_without_errors" [ "$(j '.errors.total == 0 and .handshakes.total >= 200')" = true ]
# X25519 was the client's only key share: P-256 everywhere means every handshake took an HRR.
check "every_handshake_negotiated_p256_after_a_retry ($(j '[.negotiated[].group] | unique | join(",")'))" \
    [ "$(j '[.negotiated[] | .group == "prime256v1" and .version == "TLSv1.3"] | all and length > 0')" = true ]
check "tls13_stateful_tickets_resume_100_percent_through_hrr ($(j '"\(.resumption.resumed)/\(.resumption.offered)"'))" \
    [ "$(j '.resumption.offered >= 190 and .resumption.resumed == .resumption.offered')" = true ]
check "every_cell_of_the_matrix_resumes_through_hrr" [ "$(j '[.matrix[] | .offered > 0 and .resumed == .offered] | all')" = true ]
check "server_lookup_hits_equal_resumptions ($(j '"hits \(.server.total.lookups_hit) from Redis + \(.server.total.lookups_l1_hit) from the local cache, resumed \(.handshakes.resumed)"'))" \
    [ "$(j '(.server.total.lookups_hit + .server.total.lookups_l1_hit) == .handshakes.resumed')" = true ]

finish
