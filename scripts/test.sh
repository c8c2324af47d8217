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

# ctest_records BUILD LABEL JOBS WANT SUFFIX: runs the ctest cases of LABEL in BUILD, JOBS at a
# time, and records one result per script from ctest's result lines
# ("  3/7 Test #18: integration.tickets ........***Failed   81.20 sec"); a skipped script
# (exit 77) counts as a failure, and so does running fewer scripts than WANT.
ctest_records() {
    local build=$1 label=$2 jobs=$3 want=$4 suffix=$5 log=$ROOT/$1/$2-ctest.log start ran=0 name result
    start=$(date +%s)
    ctest --test-dir "$build" -L "$label" -j"$jobs" --output-on-failure --timeout 900 2>&1 | tee "$log"
    echo "   ($(($(date +%s) - start)) s)"
    while read -r name result; do
        ran=$((ran + 1))
        case $result in
        Passed) record "$name$suffix" 0 ;;
        Skipped) echo "   $name skipped: a tool it needs is not installed (see its output); CI must not skip"
            record "$name$suffix (skipped)" 1 ;;
        *) record "$name$suffix ($result)" 1 ;;
        esac
    done < <(sed -n 's/^ *[0-9]*\/[0-9]* *Test *#[0-9]*: \(integration\.[A-Za-z0-9_]*\) \.*[ *]*\([A-Za-z]*\).*/\1 \2/p' "$log")
    [ "$ran" -eq "$want" ] || record "$label: ctest ran $ran of $want scripts in $build" 1
}

if stage integration; then
    # Every tests/integration/*.sh against the sanitized build (TLSC_BIN=build-asan, set by
    # tests/integration/CMakeLists.txt), two at a time (the scripts take free ports); there
    # the nodes get generous lookup/store timeouts, the sanitizer is for memory errors.
    jobs=${TLSC_TEST_JOBS:-2}
    echo "== integration tests (build-asan, $jobs at a time)"
    ctest_records build-asan integration "$jobs" "$(find tests/integration -maxdepth 1 -name '*.sh' | wc -l)" ""
    # The scripts labelled "defaults" again, on the optimized build, at the server's default
    # --lookup-timeout / --store-timeout (10 / 50 ms): the budgets users get, end to end.
    echo "== integration tests at the default timeouts (build, one at a time)"
    ctest_records build defaults 1 "$(sed -n 's/^set(TLSC_DEFAULTS_TESTS \(.*\))$/\1/p' tests/integration/CMakeLists.txt | wc -w)" \
        " (build, default timeouts)"
fi

if stage fuzz; then
    for f in proto/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .c)
        echo "== fuzz $name (bounded)"
        seeds=() # the in-tree seed corpus, read only: libFuzzer writes into the first directory
        [ -d proto/fuzz/corpus/"$name" ] && seeds=(proto/fuzz/corpus/"$name")
        dict=()
        [ -f proto/fuzz/"$name".dict ] && dict=(-dict=proto/fuzz/"$name".dict)
        CC=clang cmake -S . -B build-fuzz -DTLSC_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
            cmake --build build-fuzz -j2 --target "$name" >/dev/null &&
            mkdir -p build-fuzz/corpus-"$name" &&
            ./build-fuzz/proto/"$name" -max_total_time="${TLSC_FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 \
                "${dict[@]}" build-fuzz/corpus-"$name" "${seeds[@]}" 2>&1 | tail -3
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
