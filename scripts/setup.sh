#!/usr/bin/env bash
# Installs what tlscache needs on Debian 12 (as root, or with sudo) and builds it twice:
# build/ (optimized) and build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer).
#   scripts/setup.sh            # packages + both builds
#   TLSC_SKIP_APT=1 scripts/setup.sh   # builds only
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libssl-dev libhiredis-dev libuv1-dev openssl
      redis-server redis-tools nginx-light haproxy gnuplot-nox jq python3 iproute2 procps
      docker.io docker-compose debootstrap)

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
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTLSC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "setup: built build/ and build-asan/"
