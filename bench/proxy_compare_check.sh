#!/usr/bin/env bash
# bench/proxy_compare.sh must not rot: run it at a tiny setting against every peer (tlscache from
# the build under test) and check that every row has its numbers: requests/s, resumption %, CPU per
# request (and Redis's for tlscache), no errors, bulk throughput and CPU per GiB, and RSS growth
# with every idle connection held. It asserts no figure: this box is shared.
# BENCH_PROXY_PEERS narrows the peers (default: all five). Not a ctest case: on the shared 2-CPU
# box five peers take about 3 minutes (one peer about 45 s), over the minute a smoke test may take;
# run it by hand after changing the script:  TLSC_BIN=build bench/proxy_compare_check.sh
. "$(dirname "$0")/../tests/lib/common.sh"
need nginx haproxy hitch stunnel4 redis-server openssl jq bc curl python3
trap cleanup EXIT
tlsc_tmpdir
PEERS=${BENCH_PROXY_PEERS:-tlscache tlscache_tickets haproxy hitch stunnel nginx}
IDLE=20
export TMPDIR=$TLSC_TMP
timeout 400 "$TLSC_ROOT/bench/proxy_compare.sh" --build "$TLSC_BIN" --secs 1 --concurrency 4 --bulk-mb 2 \
    --bulk-count 2 --idle "$IDLE" --peers "$PEERS" --tsv "$TLSC_TMP/rows.tsv" >"$TLSC_TMP/out.md" 2>"$TLSC_TMP/err.txt"
rc=$?
cat "$TLSC_TMP/out.md"
sed 's/^/# stderr: /' "$TLSC_TMP/err.txt"
check "the_script_exits_0 (rc $rc)" [ "$rc" = 0 ]

isnum() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }
# row_ok PEER: its row exists and every field is a number (Redis's column only for tlscache).
row_ok() {
    local peer=$1 line f i
    line=$(awk -F'\t' -v p="$peer" '$1 == p' "$TLSC_TMP/rows.tsv")
    [ -n "$line" ] || { echo "no row for $peer"; return 1; }
    IFS=$'\t' read -r -a f <<<"$line"
    [ "${#f[@]}" = 10 ] || { echo "$peer: ${#f[@]} fields: $line"; return 1; }
    for i in 1 2 3 5 6 7 8 9; do isnum "${f[$i]}" || { echo "$peer: field $i not a number: $line"; return 1; }; done
    if [ "$peer" = tlscache ]; then
        isnum "${f[4]}" || { echo "$peer: no Redis CPU: $line"; return 1; }
    fi
    [ "${f[5]}" = 0 ] || { echo "$peer: ${f[5]} errors"; return 1; }
    [ "${f[9]}" = "$IDLE" ] || { echo "$peer: held ${f[9]} idle connections, not $IDLE"; return 1; }
}
for p in $PEERS; do check "row_has_numbers_$p" row_ok "$p"; done
check "the_markdown_table_has_a_row_per_peer" [ "$(grep -c '^| [a-z_]* | [0-9]' "$TLSC_TMP/out.md")" = "$(echo $PEERS | wc -w)" ]
finish
