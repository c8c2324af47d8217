#!/usr/bin/env bash
# Runs every test: unit tests (optimized and sanitized builds), integration tests against the
# sanitized binaries with a real redis-server, the protocol fuzzer for a bounded time, and the
# container cluster test. Prints one summary line "N passed, N failed".
#   scripts/test.sh                 # everything
#   TLSC_ONLY=integration scripts/test.sh   # one stage: unit|integration|fuzz|cluster
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failures=()
stage() { [ -z "${TLSC_ONLY:-}" ] || [ "$TLSC_ONLY" = "$1" ]; }
record() { # record NAME RC
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1"; fi
}

if stage unit; then
    for b in build build-asan; do
        echo "== unit tests ($b)"
        ctest --test-dir "$b" --output-on-failure -j2 --timeout 300
        record "unit($b)" $?
    done
fi

if stage integration; then
    for t in tests/integration/*.sh; do
        [ -e "$t" ] || continue
        echo "== $t"
        start=$(date +%s)
        TLSC_BIN="$ROOT/build-asan" timeout 900 bash "$t"
        rc=$?
        echo "   ($(($(date +%s) - start)) s)"
        record "$t" $rc
    done
fi

if stage fuzz; then
    for f in proto/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .c)
        echo "== fuzz $name (bounded)"
        CC=clang cmake -S . -B build-fuzz -DTLSC_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
            cmake --build build-fuzz -j2 --target "$name" >/dev/null &&
            mkdir -p build-fuzz/corpus-"$name" &&
            ./build-fuzz/proto/"$name" -max_total_time="${TLSC_FUZZ_SECONDS:-60}" -rss_limit_mb=2048 \
                build-fuzz/corpus-"$name" 2>&1 | tail -3
        record "fuzz($name)" "${PIPESTATUS[0]}"
    done
fi

if stage cluster; then
    scripts/ensure-docker.sh
    for t in tests/cluster/*.sh; do
        [ -e "$t" ] || continue
        echo "== $t"
        timeout 1500 bash "$t"
        record "$t" $?
    done
fi

echo
((${#failures[@]})) && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
