#!/usr/bin/env bash
# Prints a real /metrics scrape for docs/operations.md: Redis, one tlscache-server node with two
# workers and a throwaway PKI, 400 tlscache-bench connections (TLS 1.2, session IDs), then one
# scrape. Everything runs on 127.0.0.1 free ports and is removed at exit.
#   scripts/metrics-sample.sh [grep -E pattern of sample lines to leave out; default: the per-worker series]
. "$(dirname "$0")/../tests/lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server openssl curl
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" >/dev/null || exit 1
start_redis >/dev/null || exit 1
port=$(free_port)
admin=$(free_port)
start_node N "$port" --admin "127.0.0.1:$admin" || exit 1
wait_for 10 "ready" curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null || exit 1
"$TLSC_BIN/bench/tlscache-bench" --target "127.0.0.1:$port" --tls 1.2 --mode id --connections 400 --concurrency 8 \
    --sni a.example >/dev/null 2>&1 || exit 1
curl -s "http://127.0.0.1:$admin/metrics" | grep -v -E -- "${1:-worker=\"[0-9]+\"}"
