#!/usr/bin/env bash
# Runs every test: unit tests (optimized and sanitized builds), integration tests against the
# sanitized binaries with a real redis-server, the protocol fuzzer for a bounded time, and the
# container cluster test. Prints one summary line "N passed, N failed".
#   scripts/test.sh                 # everything
#   TLSC_ONLY=integration scripts/test.sh   # one stage: unit|integration|fuzz|cluster
#   TLSC_TEST_JOBS=1 scripts/test.sh        # integration scripts one at a time (default 2)
# Unit and integration tests are ctest cases (labels "unit", "integration"): by hand,
#   ctest --test-dir build -L unit            ctest --test-dir build-asan -L integration -R tickets
# A skipped test (exit 77: a tool it needs is missing) counts as a failure here: this script
# installs everything first, so a skip means the install is incomplete.
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
        ctest --test-dir "$b" -L unit --output-on-failure -j2 --timeout 300
        record "unit($b)" $?
    done
fi

if stage integration; then
    # Every tests/integration/*.sh through ctest against the sanitized build (TLSC_BIN is
    # build-asan, set by tests/integration/CMakeLists.txt); the scripts take free ports, so
    # two run at a time. One record per script, from ctest's result lines
    # ("  3/7 Test #18: integration.tickets ........***Failed   81.20 sec").
    jobs=${TLSC_TEST_JOBS:-2}
    log=$ROOT/build-asan/integration-ctest.log
    echo "== integration tests (build-asan, $jobs at a time)"
    start=$(date +%s)
    ctest --test-dir build-asan -L integration -j"$jobs" --output-on-failure --timeout 900 2>&1 | tee "$log"
    echo "   ($(($(date +%s) - start)) s)"
    ran=0
    while read -r name result; do
        ran=$((ran + 1))
        case $result in
        Passed) record "$name" 0 ;;
        Skipped) echo "   $name skipped: a tool it needs is not installed (see its output); CI must not skip"
            record "$name (skipped)" 1 ;;
        *) record "$name ($result)" 1 ;;
        esac
    done < <(sed -n 's/^ *[0-9]*\/[0-9]* *Test *#[0-9]*: \(integration\.[A-Za-z0-9_]*\) \.*[ *]*\([A-Za-z]*\).*/\1 \2/p' "$log")
    want=$(find tests/integration -maxdepth 1 -name '*.sh' | wc -l)
    [ "$ran" -eq "$want" ] || record "integration: ctest ran $ran of $want scripts" 1
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
