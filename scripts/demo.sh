#!/usr/bin/env bash
# The quick start's main job: installs and builds (scripts/setup.sh), then runs a local
# cluster — a private redis-server, the key daemon when built, two tlscache-server nodes with
# several workers each — shows a session made on one worker resuming on another worker and on
# the other node, runs a resumption benchmark across both nodes, and prints where to look
# with redis-cli. On a terminal it keeps the cluster up until Ctrl-C; otherwise it stops.
#   scripts/demo.sh [--keep]   (--keep: stay up even when not on a terminal, until Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh

export TLSC_BIN=$ROOT/build
. tests/lib/common.sh
. tests/lib/certs.sh
. tests/lib/server.sh
set +u
trap cleanup EXIT
tlsc_tmpdir
TLSC_KEEP_TMP=1
WORKERS=$(nproc); [ "$WORKERS" -lt 2 ] && WORKERS=2
export WORKERS

echo "== tlscache demo (files, logs and certificates in $TLSC_TMP)"
make_test_pki "$TLSC_TMP/pki"
start_redis
echo "   redis-server  127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

EXTRA=()
if [ -x build/cache-daemon/tlscache-daemon ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TLSC_TMP/cluster.secret"
    chmod 600 "$TLSC_TMP/cluster.secret"
    KEYD_PORT=$(free_port)
    build/cache-daemon/tlscache-daemon --listen "127.0.0.1:$KEYD_PORT" --secret-file "$TLSC_TMP/cluster.secret" \
        >>"$TLSC_TMP/daemon.log" 2>&1 &
    track $!
    wait_port "$KEYD_PORT" 10
    EXTRA=(--resumption both --keyd "127.0.0.1:$KEYD_PORT" --keyd-secret-file "$TLSC_TMP/cluster.secret")
    echo "   tlscache-daemon 127.0.0.1:$KEYD_PORT (ticket keys, in memory only)"
fi
PA=$(free_port)
PB=$(free_port)
start_node A "$PA" "${EXTRA[@]}"
start_node B "$PB" "${EXTRA[@]}"
echo "   node A        127.0.0.1:$PA ($WORKERS workers)   node B 127.0.0.1:$PB ($WORKERS workers)"
# every_worker_up: each worker of both nodes has published its stats (its Redis link is up).
every_worker_up() {
    local n
    n=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:stats:*' | wc -l)
    echo "$n of $((2 * WORKERS)) workers publishing"
    [ "$n" -ge $((2 * WORKERS)) ]
}
wait_for 15 "every worker's first stats in Redis" every_worker_up || echo "   (going on anyway)"

echo
echo "== A session made on one worker resumes on another (openssl s_client -sess_out / -sess_in)"
S=$TLSC_TMP/demo.sess
r=$(sget "$PA" 1.2 a.example "" "$S")
echo "   new session : $r"
w=$(jfield "$r" worker)
for _ in $(seq 20); do
    r=$(sget "$PA" 1.2 a.example "$S" "")
    [ "$(jfield "$r" worker)" != "$w" ] && break
done
echo "   other worker: $r"
r=$(sget "$PB" 1.2 a.example "$S" "")
echo "   other node  : $r"

echo
echo "== Resumption benchmark across both nodes (tlscache-bench)"
if [ -x build/bench/tlscache-bench ]; then
    for v in 1.2 1.3; do
        build/bench/tlscache-bench --target "127.0.0.1:$PA" --target "127.0.0.1:$PB" --balance rr \
            --tls "$v" --mode id --connections 2000 --concurrency 16 --sni a.example \
            --redis "redis://127.0.0.1:$REDIS_PORT" || true
    done
else
    echo "   (tlscache-bench not built)"
fi

id=$(openssl sess_id -in "$S" -noout -text | awk '/Session-ID:/{print tolower($2)}')
cat <<MSG

== Where to look with redis-cli
   redis-cli -p $REDIS_PORT --scan --pattern 'tlscache:sess:*' | head        # sessions
   redis-cli -p $REDIS_PORT hgetall tlscache:sess:$id      # one session
   redis-cli -p $REDIS_PORT ttl tlscache:sess:$id          # seconds it has left
   redis-cli -p $REDIS_PORT hgetall tlscache:stats:A:1        # worker 1 of node A: counters
   Logs: $TLSC_TMP/A.log $TLSC_TMP/B.log
MSG
if [ -t 0 ] || [ "${1:-}" = --keep ]; then
    echo "   The cluster stays up; Ctrl-C stops it."
    while sleep 3600; do :; done
fi
exit 0
