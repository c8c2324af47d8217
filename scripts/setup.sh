#!/usr/bin/env bash
# Installs what tlscache and every test, benchmark and script in the tree need on Debian 12 (as
# root, or with sudo) and builds it twice, warnings as errors: build/ (optimized, hardened) and
# build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer).
#   scripts/setup.sh            # packages + both builds
#   TLSC_SKIP_APT=1 scripts/setup.sh   # builds only
set -euo pipefail
cd "$(dirname "$0")/.."

# What uses what:
#   build:                     build-essential cmake pkg-config libssl-dev libhiredis-dev libuv1-dev
#   fuzz stage (scripts/test.sh): clang and its libFuzzer/sanitizer runtime libclang-rt-14-dev
#   integration tests:         openssl (s_client, s_server, certificates), redis-server redis-tools,
#                              jq, python3, nodejs (tests/lib/node_client.js), gnuplot-nox
#                              (tlscache-bench --plot), procps (ps, pgrep), coreutils (timeout),
#                              curl and iproute2's ss (tests/integration/admin.sh)
#   proxy tests:               nginx-light (backends, h2c, proxy_protocol), haproxy (accept-proxy,
#                              send-proxy-v2), curl (HTTP/1.1 keep-alive, h2 through ALPN)
#   bench/compare.sh:          nginx-light haproxy bc
#   bench/proxy_compare.sh:    + hitch, stunnel4, libnginx-mod-stream (nginx `stream` with ssl;
#                              bench/proxy_compare_check.sh)
#   tests/integration/sentinel.sh, bench/failover.sh: redis-sentinel (3 sentinels on loopback)
#   container test, images:    docker.io docker-compose debootstrap iproute2
#   install/package tests:     systemd (systemd-analyze verify), groff-base (man page checks),
#                              dpkg-dev (dpkg-shlibdeps for cpack's Depends)
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev libssl-dev libhiredis-dev libuv1-dev
      openssl redis-server redis-tools redis-sentinel nginx-light libnginx-mod-stream haproxy hitch stunnel4 gnuplot-nox
      jq bc python3 iproute2 procps
      coreutils curl docker.io docker-compose debootstrap faketime systemd groff-base dpkg-dev)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -z "${TLSC_SKIP_APT:-}" ]; then
    missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

jobs=$(nproc)
# -Werror here (CI and developers build through this script); a plain cmake build leaves it off.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSC_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTLSC_SANITIZE=ON -DTLSC_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "setup: built build/ and build-asan/"
