#!/usr/bin/env bash
# The Debian package, installed for real: `cpack -G DEB` in the optimized build tree, then in
# a fresh container from the project's bookworm base image (deploy/base-image.sh; no pull):
#   - `apt-get install ./tlscache_*.deb` resolves the dependencies from the Debian mirror;
#   - tlscache-server --version runs (every shared library found), the man pages, the units
#     and the example environment files (conffiles) are installed, the tlscache user exists;
#   - tlscache-daemon starts the way its unit starts it: the unit's own Environment= lines
#     (the credential path %d filled in as systemd does), its ExecStart, as User=tlscache, on a
#     cluster secret handed over as a credential; and it leaves no secret in its log;
#   - `apt-get purge` removes it cleanly.
# The container runs `sleep` (bounded) and everything happens through `docker exec`; its only
# traffic is apt's to the Debian mirror the base image names. systemd itself does not run in
# the container: tests/integration/install.sh runs `systemd-analyze verify` on the units.
# Env: TLSC_DEB_BUILD (default TLSC_BIN, i.e. build/): the build tree to package; it must not
# be a sanitizer build.
. "$(dirname "$0")/../lib/common.sh"
set -o pipefail
cd "$TLSC_ROOT" || exit 1
tlsc_tmpdir
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
BUILD=${TLSC_DEB_BUILD:-$TLSC_BIN}
NAME=tlscache-debtest-$$
teardown() {
    docker rm -f "$NAME" >/dev/null 2>&1
    cleanup
}
trap teardown EXIT
trap 'exit 130' INT TERM

quiet() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" | tail -20 | sed 's/^/    /'; return 1; }; }
dx() { docker exec "$NAME" "$@"; }

if ! docker info >/dev/null 2>&1 || ! command -v cpack >/dev/null; then
    fail "docker engine and cpack available (scripts/setup.sh; scripts/ensure-docker.sh)"
    finish
    exit 1
fi
if ! [ -f "$BUILD/CPackConfig.cmake" ] || grep -q '^TLSC_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
    fail "$BUILD is a configured, non-sanitizer build tree (scripts/setup.sh makes build/)"
    finish
    exit 1
fi

# ---- the package ----
t0=$SECONDS
check "cpack -G DEB ($BUILD)" quiet cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TLSC_TMP/deb"
deb=$(cd "$TLSC_TMP/deb" && ls tlscache_*.deb 2>/dev/null | head -n1)
check "one tlscache_<version>_<arch>.deb" [ -n "$deb" ]
echo "# $deb built in $((SECONDS - t0)) s; $(dpkg-deb -f "$TLSC_TMP/deb/$deb" Depends)"
has_depends() {
    local d miss="" deps
    deps=$(dpkg-deb -f "$TLSC_TMP/deb/$deb" Depends)
    for d in libssl3 libhiredis0.14 libuv1 libc6 passwd procps; do
        grep -qE "(^|, )$d( |,|\$)" <<<"$deps" || miss+=" $d"
    done
    [ -z "$miss" ] || { echo "    Depends lacks:$miss ($deps)"; return 1; }
}
check "Depends: libssl3, libhiredis0.14, libuv1, libc6, passwd, procps" has_depends
check "conffiles: the two environment files" [ "$(dpkg-deb --ctrl-tarfile "$TLSC_TMP/deb/$deb" | tar -xO ./conffiles | tr '\n' ' ')" = "/etc/tlscache/server.env /etc/tlscache/daemon.env " ]

# ---- a fresh container ----
if ! quiet deploy/base-image.sh; then
    fail "base image $BASE_IMAGE (deploy/base-image.sh)"
    finish
    exit 1
fi
chmod 0755 "$TLSC_TMP" "$TLSC_TMP/deb"
check "container from $BASE_IMAGE" quiet docker run -d --init --name "$NAME" -v "$TLSC_TMP/deb:/deb:ro" "$BASE_IMAGE" sleep 600
# The base image keeps man pages out like Docker's -slim images; a host install has them.
check "the slim image's dpkg excludes lifted" dx rm -f /etc/dpkg/dpkg.cfg.d/docker-slim
t0=$SECONDS
check "apt-get update (the Debian mirror)" quiet dx timeout 150 apt-get update
check "apt-get install ./$deb: the dependencies resolve" quiet dx env DEBIAN_FRONTEND=noninteractive timeout 200 \
    apt-get install -y --no-install-recommends "/deb/$deb"
echo "# apt-get update + install: $((SECONDS - t0)) s"

version=$(sed -nE 's/^project\(tlscache VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
check "tlscache-server --version: tlscache-server $version" [ "$(dx tlscache-server --version | head -n1)" = "tlscache-server $version" ]
check "tlscache-server --version: names OpenSSL, libuv, hiredis" [ "$(dx tlscache-server --version | grep -cE '^(OpenSSL|libuv|hiredis) ')" = 3 ]
check "tlscache-daemon and tlscache-bench run" quiet dx sh -c 'tlscache-daemon --version && tlscache-bench --version'
files_there() {
    local f miss=""
    for f in /usr/share/man/man8/tlscache-server.8 /usr/share/man/man8/tlscache-daemon.8 /usr/share/man/man1/tlscache-bench.1 \
        /usr/lib/systemd/system/tlscache-server.service /usr/lib/systemd/system/tlscache-daemon.service \
        /etc/tlscache/server.env /etc/tlscache/daemon.env /usr/share/doc/tlscache/README.md; do
        dx test -s "$f" || miss+=" $f"
    done
    [ -z "$miss" ] || { echo "    not installed:$miss"; return 1; }
}
check "man pages, units, env files and docs installed" files_there
check "dpkg knows the env files as conffiles" [ "$(dx dpkg-query -W -f='${Conffiles}' tlscache | awk 'NF { print $1 }' | sort | tr '\n' ' ')" = "/etc/tlscache/daemon.env /etc/tlscache/server.env " ]
check "postinst made the tlscache system user (no login)" [ "$(dx getent passwd tlscache | cut -d: -f7)" = /usr/sbin/nologin ]
check "/etc/tlscache is root:tlscache 0750" [ "$(dx stat -c '%U:%G %a' /etc/tlscache)" = "root:tlscache 750" ]

# ---- tlscache-daemon started as its unit starts it ----
# What systemd does for the unit, by hand: the cluster secret copied into the credentials
# directory, owned by the service user, 0400 (as on ramfs); the RuntimeDirectory; then the
# unit's Environment= lines (%d = the credentials directory), its EnvironmentFile, its
# ExecStart, as User=/Group=.
UNIT=/usr/lib/systemd/system/tlscache-daemon.service
CRED=/run/credentials/tlscache-daemon.service
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
check "cluster secret in /etc/tlscache (root, 0600) and handed over as a credential" quiet dx sh -ec "
    umask 077; printf %s '$SECRET' >/etc/tlscache/cluster.secret
    install -d -m 0500 -o tlscache -g tlscache $CRED
    install -m 0400 -o tlscache -g tlscache /etc/tlscache/cluster.secret $CRED/cluster-secret
    install -d -m 0750 -o tlscache -g tlscache /run/tlscache-daemon"
unit_env=$(dx sed -n 's/^Environment=//p' "$UNIT" | sed "s|%d|$CRED|g")
exec_start=$(dx sed -n 's/^ExecStart=//p' "$UNIT")
check "the unit's Environment= names the credential and the socket" [ "$(printf '%s\n' "$unit_env" | wc -l)" = 2 ]
# shellcheck disable=SC2086 # word splitting of the unit's VAR=value lines is intended
check "tlscache-daemon launched as User=tlscache with the unit's environment" dx sh -c "
    set -a; . /etc/tlscache/daemon.env; set +a
    env $(printf '%s ' $unit_env) setpriv --reuid=tlscache --regid=tlscache --init-groups $exec_start >/tmp/daemon.log 2>&1 &
    echo \$! >/tmp/daemon.pid"
daemon_up() {
    dx test -S /run/tlscache-daemon/keyd.sock && dx grep -q listening /tmp/daemon.log && return 0
    dx tail -n 3 /tmp/daemon.log
    return 1
}
check "tlscache-daemon listens on /run/tlscache-daemon/keyd.sock" wait_for 20 "the daemon's socket" daemon_up
check "it runs as tlscache" [ "$(dx sh -c 'ps -o user= -p "$(cat /tmp/daemon.pid)" 2>/dev/null || stat -c %U /proc/"$(cat /tmp/daemon.pid)"')" = tlscache ]
check "SIGHUP (the unit's ExecReload) leaves it running" dx sh -c 'kill -HUP "$(cat /tmp/daemon.pid)"'
check "SIGHUP logged" wait_for 10 "SIGHUP in the log" dx grep -q 'SIGHUP: nothing to reload' /tmp/daemon.log
check "still running after SIGHUP" dx sh -c 'kill -0 "$(cat /tmp/daemon.pid)"'
check "no secret in its log" bash -c "! docker exec '$NAME' grep -qF '$SECRET' /tmp/daemon.log"
dx sh -c 'kill -TERM "$(cat /tmp/daemon.pid)"'
# Gone, or a zombie waiting for a reaper (docker-init reaps it when the engine has one).
daemon_gone() { dx sh -c 's=$(ps -o stat= -p "$(cat /tmp/daemon.pid)"); [ -z "$s" ] || [ "${s#Z}" != "$s" ]'; }
check "SIGTERM: it exits" wait_for 20 "the daemon gone" daemon_gone

# ---- removal ----
check "apt-get purge tlscache" quiet dx env DEBIAN_FRONTEND=noninteractive apt-get purge -y tlscache
check "binaries and units gone after purge" bash -c "! docker exec '$NAME' sh -c 'ls /usr/bin/tlscache-* /usr/lib/systemd/system/tlscache-*' 2>/dev/null"
echo "# deb test took ${SECONDS} s"
finish
