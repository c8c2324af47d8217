#!/usr/bin/env bash
# The Debian package, installed for real: `cpack -G DEB` in the optimized build tree, then in
# a fresh container from the project's bookworm base image (deploy/base-image.sh; no pull):
#   - `apt-get install ./tlscache_*.deb` resolves the dependencies from the Debian mirror;
#   - tlscache-server --version runs (every shared library found), the man pages, the units
#     and the example environment files (conffiles) are installed, the tlscache user exists;
#   - the units under a real systemd (systemd added, the container committed to a throw-away
#     image and booted with systemd as PID 1, not privileged): a node set up as
#     docs/operations.md says starts both units; they run as tlscache on the cluster secret
#     handed over by LoadCredential=, the server on port 443 with CAP_NET_BIND_SERVICE alone,
#     the daemon with no capability; a TLS handshake from here to the container's 443 works;
#     `systemctl reload` reloads the server's certificates and leaves the daemon running;
#     no secret reaches the journal; `systemctl stop` stops both;
#   - `apt-get purge` removes it cleanly.
# Everything happens through `docker exec`; the only traffic is apt's to the Debian mirror the
# base image names, and the handshake to the test's own container.
# Env: TLSC_DEB_BUILD (default TLSC_BIN, i.e. build/): the build tree to package; it must not
# be a sanitizer build.
. "$(dirname "$0")/../lib/common.sh"
need openssl
set -o pipefail
cd "$TLSC_ROOT" || exit 1
tlsc_tmpdir
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
BUILD=${TLSC_DEB_BUILD:-$TLSC_BIN}
NAME=tlscache-debtest-$$
IMAGE=tlscache-debtest:$$ # throw-away: the base image + the package + systemd
teardown() {
    docker rm -f "$NAME" >/dev/null 2>&1
    docker rmi "$IMAGE" >/dev/null 2>&1
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
check "tlscache-daemon, tlscache-bench and tlscache-ctl run" quiet dx sh -c 'tlscache-daemon --version && tlscache-bench --version && tlscache-ctl --version'
files_there() {
    local f miss=""
    for f in /usr/share/man/man8/tlscache-server.8 /usr/share/man/man8/tlscache-daemon.8 /usr/share/man/man1/tlscache-bench.1 \
        /usr/share/man/man8/tlscache-ctl.8 \
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

# ---- the units under systemd ----
# systemd added to the same container, committed to a throw-away image, and booted as PID 1
# of a second container (not privileged): the units then run for real, with their
# credentials, user, capabilities and sandbox.
check "systemd installed beside the package" quiet dx env DEBIAN_FRONTEND=noninteractive timeout 200 \
    apt-get install -y --no-install-recommends systemd
check "committed as $IMAGE" quiet docker commit "$NAME" "$IMAGE"
docker rm -f "$NAME" >/dev/null 2>&1
check "container booting systemd" quiet docker run -d --name "$NAME" --tmpfs /run --tmpfs /run/lock \
    -v /sys/fs/cgroup:/sys/fs/cgroup:ro "$IMAGE" /lib/systemd/systemd
booted() {
    local s
    s=$(dx systemctl is-system-running 2>&1)
    case $s in running | degraded) return 0 ;; esac
    echo "$s"
    return 1
}
check "systemd is up" wait_for 30 "systemd running" booted

# A node as docs/operations.md sets one up: the cluster secret (root, 0600), a certificate the
# service group may read, server.env pointing at the daemon; port 443 needs the capability.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLSC_TMP/key.pem" \
    -out "$TLSC_TMP/cert.pem" -days 2 -subj /CN=deb.test >/dev/null 2>&1
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
docker cp "$TLSC_TMP/cert.pem" "$NAME:/etc/tlscache/cert.pem" && docker cp "$TLSC_TMP/key.pem" "$NAME:/etc/tlscache/key.pem"
check "node configured (secret, certificate, server.env)" quiet dx sh -ec "
    umask 077; printf %s '$SECRET' >/etc/tlscache/cluster.secret
    chown root:tlscache /etc/tlscache/cert.pem /etc/tlscache/key.pem; chmod 0640 /etc/tlscache/cert.pem /etc/tlscache/key.pem
    cat >>/etc/tlscache/server.env <<'ENV'
TLSCACHE_CERT=/etc/tlscache/cert.pem
TLSCACHE_KEY=/etc/tlscache/key.pem
TLSCACHE_LISTEN=0.0.0.0:443
TLSCACHE_WORKERS=2
TLSCACHE_KEYD=unix:/run/tlscache-daemon/keyd.sock
TLSCACHE_KEYD_SECRET_FILE=/run/credentials/tlscache-server.service/cluster-secret
TLSCACHE_RESUMPTION=tickets
ENV"
journal() { dx journalctl --no-pager -o cat -u "$1"; }
# up UNIT PATTERN: the unit is active and its journal has PATTERN (else prints what it saw).
up() {
    [ "$(dx systemctl is-active "$1")" = active ] && journal "$1" | grep -qE "$2" && return 0
    dx systemctl status --no-pager -l "$1" | tail -n 4
    return 1
}
check "systemctl start tlscache-daemon" quiet dx systemctl start tlscache-daemon
check "the daemon runs, on the credential" wait_for 20 "daemon listening" up tlscache-daemon 'listening'
check "systemctl start tlscache-server" quiet dx systemctl start tlscache-server
check "the server listens on 443 and holds ticket keys" wait_for 20 "server up" up tlscache-server 'a current ticket key is held'
pid_of() { dx systemctl show -p MainPID --value "$1"; }
check "both run as tlscache" [ "$(dx ps -o user= -p "$(pid_of tlscache-server),$(pid_of tlscache-daemon)" | sort -u | tr -d ' \n')" = tlscache ]
check "server: CAP_NET_BIND_SERVICE only, NoNewPrivs" [ "$(dx grep -E '^(CapEff|CapBnd|NoNewPrivs)' "/proc/$(pid_of tlscache-server)/status" | awk '{ print $2 }' | tr '\n' ' ')" = "0000000000000400 0000000000000400 1 " ]
check "daemon: no capability at all" [ "$(dx grep -E '^CapBnd' "/proc/$(pid_of tlscache-daemon)/status" | awk '{ print $2 }')" = 0000000000000000 ]
IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NAME")
handshake() { timeout 10 openssl s_client -connect "$IP:443" -servername deb.test </dev/null 2>&1 | grep -m1 -E '^(New|Reused),'; }
check "a TLS handshake on $IP:443" handshake
check "systemctl reload (SIGHUP) both" quiet dx systemctl reload tlscache-server tlscache-daemon
check "server: certificates reloaded" wait_for 20 "server reload logged" up tlscache-server 'SIGHUP: certificates reloaded'
check "daemon: SIGHUP logged, still active" wait_for 20 "daemon reload logged" up tlscache-daemon 'SIGHUP: nothing to reload'
check "a handshake after the reload" handshake
no_secret() { ! dx journalctl --no-pager -o cat -u tlscache-server -u tlscache-daemon | grep -qF "$SECRET"; }
check "no secret in either journal" no_secret
check "systemctl stop both" quiet dx systemctl stop tlscache-server tlscache-daemon
# stopped UNIT: inactive, else prints its state and the journal's last lines (a worker that
# crashed while stopping makes the master exit 1: "failed").
stopped() {
    local s
    s=$(dx systemctl is-active "$1")
    [ "$s" = inactive ] && return 0
    echo "    $1: $s"
    journal "$1" | tail -n 8 | sed 's/^/    /'
    return 1
}
check "server stopped" wait_for 20 "server inactive" stopped tlscache-server
check "daemon stopped" wait_for 20 "daemon inactive" stopped tlscache-daemon

# ---- removal ----
check "apt-get purge tlscache" quiet dx env DEBIAN_FRONTEND=noninteractive apt-get purge -y tlscache
check "binaries and units gone after purge" bash -c "! docker exec '$NAME' sh -c 'ls /usr/bin/tlscache-* /usr/lib/systemd/system/tlscache-*' 2>/dev/null"
echo "# deb test took ${SECONDS} s"
finish
