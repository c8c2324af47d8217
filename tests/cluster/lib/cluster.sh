# shellcheck shell=bash
# Helpers for the container cluster tests (sourced by tests/cluster/compose_*test.sh after
# tests/lib/common.sh). Everything here talks only to the test's own compose project: its
# containers, its network, and the ports it published on 127.0.0.1.
#
# Needs: PROJECT exported; cluster_prepare exports the rest (TLSC_TMP, TLSCACHE_PORT,
# TLSCACHE_STATS_PORT, TLSCACHE_SECRETS_DIR, ...).

CLUSTER_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The compose client: docker-compose (1.29 from Debian), else the Compose v2 plugin.
if command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    COMPOSE=()
fi

# dc ARGS...: compose on the test's project (bounded: no compose call may hang the test), with
# the compose files named in CLUSTER_COMPOSE_FILES (relative to the root; default the one).
dc() {
    local f files=()
    for f in ${CLUSTER_COMPOSE_FILES:-docker-compose.yml}; do files+=(-f "$TLSC_ROOT/$f"); done
    timeout "${DC_TIMEOUT:-180}" "${COMPOSE[@]}" --ansi never -p "$PROJECT" "${files[@]}" "$@"
}

# cid SERVICE: the container id of a service ("" when it has none).
cid() { dc ps -q "$1" 2>/dev/null | head -n1; }

# health SERVICE: "healthy", "unhealthy", "starting", "exited", or "missing".
health() {
    local id
    id=$(cid "$1")
    [ -n "$id" ] || { echo missing; return; }
    docker inspect -f '{{if .State.Running}}{{if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing
}

# wait_healthy SECONDS SERVICE...: waits until every SERVICE is healthy.
wait_healthy() {
    local secs=$1 s all i
    shift
    for ((i = 0; i < secs * 2; i++)); do
        all=1
        for s in "$@"; do [ "$(health "$s")" = healthy ] || { all=0; break; }; done
        [ "$all" = 1 ] && return 0
        sleep 0.5
    done
    for s in "$@"; do echo "  $s: $(health "$s")" >&2; done
    return 1
}

# lb_status NODE: HAProxy's view of one backend server (UP, DOWN, MAINT, "UP 1/2" ...).
lb_status() {
    python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
        "http://127.0.0.1:$TLSCACHE_STATS_PORT/stats;csv" 2>/dev/null |
        awk -F, -v n="$1" '$1 == "nodes" && $2 == n { print $18; exit }'
}

# wait_lb NODE STATUS SECONDS: waits until HAProxy reports NODE as UP, or as out of rotation
# for STATUS DOWN (DOWN by its health checks, or "MAINT (resolution)" once the stopped
# container's name no longer resolves).
wait_lb() {
    local node=$1 want=$2 secs=$3 i st
    for ((i = 0; i < secs * 4; i++)); do
        st=$(lb_status "$node")
        case $want:$st in
        UP:UP | DOWN:DOWN* | DOWN:MAINT*) return 0 ;;
        esac
        sleep 0.25
    done
    echo "  lb: $node is '$st', wanted $want" >&2
    return 1
}

# sget TLS MODE SESS_IN SESS_OUT: one HTTPS GET through the load balancer with openssl
# s_client (TLS 1.2 or 1.3; MODE id = no ticket extension, ticket = offer tickets). Prints
# "NODE RESUMED" from the backend's JSON reply (the node that proxied the connection, and
# whether its handshake resumed, from the PROXY v2 header), or "error -" when no backend reply came.
sget() {
    local ver=$1 mode=$2 in=$3 out=$4 args reply
    args=(-connect "127.0.0.1:$TLSCACHE_PORT" -servername tlscache.test -CAfile "$TLSCACHE_SECRETS_DIR/ca.crt"
          -verify_return_error -ign_eof -quiet)
    [ "$ver" = 1.2 ] && args+=(-tls1_2) || args+=(-tls1_3)
    [ "$mode" = id ] && [ "$ver" = 1.2 ] && args+=(-no_ticket)
    [ -n "$in" ] && args+=(-sess_in "$in")
    [ -n "$out" ] && args+=(-sess_out "$out")
    reply=$(printf 'GET / HTTP/1.1\r\nHost: tlscache.test\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client "${args[@]}" 2>/dev/null | grep -a '^{' | head -n1)
    python3 -c '
import json, sys
try:
    j = json.loads(sys.argv[1])
    assert j["backend"] and j["node"]
    print(j["node"], "yes" if j.get("resumed") in (True, "true", 1) else "no")
except Exception:
    print("error -")' "$reply"
}

# chain TLS MODE N: N connections through the LB, each offering the newest session the client
# holds: the one the last connection received, if it received one (TLS 1.3 tickets, a renewed
# TLS 1.2 ticket), else the one it offered (s_client writes -sess_out only when a new session
# arrives; TLS 1.3 stateful tickets are single-use and always replaced). Prints one
# "NODE RESUMED" line per connection; the first is a full handshake.
chain() {
    local ver=$1 mode=$2 n=$3 i in="" out
    for ((i = 0; i < n; i++)); do
        out="$TLSC_TMP/chain.$ver.$mode.$i.sess"
        rm -f "$out"
        sget "$ver" "$mode" "$in" "$out"
        [ -s "$out" ] && in=$out
    done
}

# repeat_offer TLS MODE SESSFILE N: offers the same saved session N times through the LB
# (TLS 1.2 sessions and tickets may be offered again). Prints "NODE RESUMED" lines.
repeat_offer() {
    local ver=$1 mode=$2 f=$3 n=$4 i
    for ((i = 0; i < n; i++)); do sget "$ver" "$mode" "$f" ""; done
}

# bench NAME ARGS...: tlscache-bench in the compose network through the LB (the bench service),
# JSON into $TLSC_TMP/out/NAME.json, text report into $TLSC_TMP/out/NAME.txt.
bench() {
    local name=$1
    shift
    mkdir -p "$TLSC_TMP/out"
    chmod 777 "$TLSC_TMP/out"
    rm -f "$TLSC_TMP/out/$name.json"
    dc run --rm --no-deps -T -v "$TLSC_TMP/out:/out" bench --quiet --json "/out/$name.json" "$@" \
        >"$TLSC_TMP/out/$name.txt" 2>&1
    local rc=$?
    [ -s "$TLSC_TMP/out/$name.json" ] || { echo "  bench $name: no JSON (exit $rc):" >&2; tail -n 15 "$TLSC_TMP/out/$name.txt" >&2; return 1; }
    return 0
}

# bench_check NAME [--min-rate R] [--min-nodes N] [--max-errors E]: judges a bench JSON file;
# prints a one-line summary and returns non-zero when a bound is not met.
bench_check() {
    local name=$1
    shift
    python3 "$CLUSTER_LIB/bench_check.py" "$TLSC_TMP/out/$name.json" "$@"
}

# stats_sum FIELD: the sum of FIELD over every worker's stats hash in Redis.
stats_sum() {
    dc exec -T redis sh -c '
        t=0
        for k in $(redis-cli --scan --pattern "tlscache:stats:*"); do
            v=$(redis-cli hget "$k" "$1"); t=$((t + ${v:-0}))
        done
        echo $t' sh "$1" 2>/dev/null | tr -d '\r'
}

# node_stat NODE FIELD: the sum of FIELD over NODE's workers' stats hashes in Redis.
node_stat() {
    dc exec -T redis sh -c '
        t=0
        for k in $(redis-cli --scan --pattern "tlscache:stats:$1:*"); do
            v=$(redis-cli hget "$k" "$2"); t=$((t + ${v:-0}))
        done
        echo $t' sh "$1" "$2" 2>/dev/null | tr -d '\r'
}

# dump_logs SERVICE...: the last 40 log lines of each SERVICE (all when none named), to stderr.
dump_logs() { dc logs --no-color --tail=40 "$@" 2>&1 | sed 's/^/    /' >&2; }

# cluster_teardown: the EXIT trap of a compose test: the project down with its volumes, or kept
# for a look with TLSC_CLUSTER_KEEP=1 (its temp dir too); then cleanup (tests/lib/common.sh).
cluster_teardown() {
    if [ -n "${TLSC_CLUSTER_KEEP:-}" ]; then
        echo "# kept: compose project $PROJECT (TLS on 127.0.0.1:$TLSCACHE_PORT, secrets in $TLSCACHE_SECRETS_DIR)"
        TLSC_KEEP_TMP=1 # read by cleanup
        export TLSC_KEEP_TMP
    else
        dc down -v --remove-orphans -t 5 >/dev/null 2>&1
    fi
    cleanup
}

# cluster_prepare: what every compose test does first, once PROJECT (and CLUSTER_COMPOSE_FILES)
# are set: a temp dir; the published ports, the secrets dir, the workers and log level exported
# for the compose files; cluster_teardown on EXIT; then the prerequisites: the docker engine and
# compose, the images (deploy/build-images.sh, unless TLSC_SKIP_BUILD=1), fresh secrets
# (deploy/gen-secrets.sh). A missing prerequisite is a failed check, and the test ends there.
cluster_prepare() {
    local start
    tlsc_tmpdir
    export TLSCACHE_SECRETS_DIR=$TLSC_TMP/secrets
    export TLSCACHE_PORT TLSCACHE_STATS_PORT
    TLSCACHE_PORT=$(free_port)
    TLSCACHE_STATS_PORT=$(free_port)
    export TLSCACHE_WORKERS=${TLSCACHE_WORKERS:-2}
    export TLSCACHE_LOG_LEVEL=${TLSCACHE_LOG_LEVEL:-info}
    trap cluster_teardown EXIT
    trap 'exit 130' INT TERM
    if ! docker info >/dev/null 2>&1 || [ ${#COMPOSE[@]} -eq 0 ]; then
        fail "docker engine and docker-compose available (install docker.io docker-compose, start dockerd)"
        finish
        exit 1
    fi
    if [ -z "${TLSC_SKIP_BUILD:-}" ]; then
        start=$(date +%s)
        if ! deploy/build-images.sh; then
            fail "images build (deploy/build-images.sh)"
            finish
            exit 1
        fi
        echo "# images ready in $(($(date +%s) - start)) s"
    fi
    deploy/gen-secrets.sh >/dev/null 2>&1 || { fail "secrets generated (deploy/gen-secrets.sh)"; finish; exit 1; }
}
