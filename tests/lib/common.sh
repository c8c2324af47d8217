# Shared helpers for integration tests. Source from a test script:
#   . "$(dirname "$0")/../lib/common.sh"
# Every process a test starts is recorded with `track PID` and ended by PID at exit.
set -u

TLSC_ROOT=${TLSC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TLSC_BIN=${TLSC_BIN:-$TLSC_ROOT/build}
TESTS_PASSED=0
TESTS_FAILED=0
TLSC_PIDS=()

tlsc_tmpdir() {
    TLSC_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-test.XXXXXX")
    export TLSC_TMP
    # Sanitizer reports from any process we start land here; finish() fails the test on any.
    mkdir -p "$TLSC_TMP/san"
    export ASAN_OPTIONS="log_path=$TLSC_TMP/san/asan:abort_on_error=1:detect_leaks=0"
    export UBSAN_OPTIONS="log_path=$TLSC_TMP/san/ubsan:print_stacktrace=1:halt_on_error=1"
}

track() { TLSC_PIDS+=("$1"); }

# Ends every tracked process (TERM, then KILL after 3 s), children of ours only.
cleanup() {
    local pid
    for pid in "${TLSC_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${TLSC_PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ -n "${TLSC_TMP:-}" ] && [ -z "${TLSC_KEEP_TMP:-}" ]; then rm -rf "$TLSC_TMP"; fi
    return 0 # also under `set -e` (scripts/demo.sh): a process already gone is not a failure
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# wait_port PORT [SECONDS]: waits until 127.0.0.1:PORT accepts TCP connections.
wait_port() {
    local port=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $port did not open within ${secs}s" >&2
    return 1
}

# start_redis [PORT]: a private redis-server on 127.0.0.1, no persistence; sets REDIS_PORT, REDIS_PID.
start_redis() {
    REDIS_PORT=${1:-$(free_port)}
    mkdir -p "$TLSC_TMP/redis-$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$TLSC_TMP/redis-$REDIS_PORT" --logfile "$TLSC_TMP/redis-$REDIS_PORT/redis.log" --daemonize no &
    REDIS_PID=$!
    track "$REDIS_PID"
    wait_port "$REDIS_PORT" 10
}

pass() { TESTS_PASSED=$((TESTS_PASSED + 1)); echo "ok - $*"; }
fail() { TESTS_FAILED=$((TESTS_FAILED + 1)); echo "not ok - $*"; }
# check NAME CMD...: runs CMD, records pass/fail under NAME.
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# Prints the summary line the runner reads and exits non-zero on any failure.
finish() {
    if [ -n "${TLSC_TMP:-}" ] && [ -n "$(ls -A "$TLSC_TMP/san" 2>/dev/null)" ]; then
        fail "sanitizer reports: $(ls "$TLSC_TMP/san")"
        head -50 "$TLSC_TMP"/san/* >&2
    fi
    echo "$TESTS_PASSED passed, $TESTS_FAILED failed"
    [ "$TESTS_FAILED" -eq 0 ]
}
