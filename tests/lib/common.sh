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
    # Every server a test starts seals its session records (the server refuses to store them
    # readable unless told --insecure-plain-records): one cluster secret per test, 0600.
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TLSC_TMP/seal.secret")
    export TLSCACHE_SEAL_SECRET_FILE=$TLSC_TMP/seal.secret
    # The admin endpoints default to fixed ports (127.0.0.1:9720 / :9721), which tests running
    # side by side would fight over: off unless a test asks for one with --admin (a flag wins).
    export TLSCACHE_ADMIN=off TLSCACHE_DAEMON_ADMIN=off
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

# wait_for SECONDS DESCRIPTION CMD...: runs CMD (a command or function whose exit status says
# whether the condition holds; let it print what it saw) every 0.1 s until it succeeds, for at
# most SECONDS. On time-out prints "timed out after SECONDS s waiting for DESCRIPTION; last
# seen: <CMD's last output>" on stderr and returns 1. Use it instead of a bare sleep wherever a
# test waits for something to happen.
wait_for() {
    local secs=$1 what=$2 out end
    shift 2
    end=$((${EPOCHREALTIME/./} + secs * 1000000))
    while :; do
        out=$("$@" 2>&1) && return 0
        ((${EPOCHREALTIME/./} < end)) || break
        sleep 0.1
    done
    echo "# timed out after $secs s waiting for $what; last seen: ${out:-(no output)}" >&2
    return 1
}

# log_has FILE PATTERN: true when FILE has a line matching PATTERN (grep -E); else prints the
# file's last lines (for wait_for's "last seen").
log_has() {
    grep -qE -- "$2" "$1" && return 0
    echo "last lines of $1:"
    tail -5 "$1"
    return 1
}

# need CMD...: when a command the test uses is not installed, says which and exits 77, which
# ctest reports as "skipped" (for a person running one script by hand). scripts/setup.sh installs
# everything, and scripts/test.sh counts a skip as a failure: CI must never skip.
need() {
    local c missing=()
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
    ((${#missing[@]} == 0)) && return 0
    echo "skip: not installed: ${missing[*]} (scripts/setup.sh installs everything the tests use)" >&2
    exit 77
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
# check NAME CMD...: runs CMD, records pass/fail under NAME. CMD is ONE command whose exit
# status is the verdict: `check n [ a ] && [ b ]` would check only `[ a ]` (write
# `[ "$x/$y" = 1/2 ]`, or put the && inside a function or `bash -c`), and `cond && check n true`
# records nothing when cond fails (write `check n cond`).
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
