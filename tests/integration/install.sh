#!/usr/bin/env bash
# Install and packaging, without containers (tests/cluster/deb_test.sh installs the .deb):
#   - every flag and variable of each binary's --help has its entry in the man page, the
#     page in the build tree is what the binary prints now (--man), and groff finds no fault;
#   - --version names the program's version and the OpenSSL (the one `openssl version` runs
#     with), libuv and hiredis versions;
#   - `cmake --install --prefix /usr/local` into a DESTDIR puts down the binaries, the man
#     pages, the units, the example environment files (every variable of --help, commented
#     out) and the docs, and the installed binaries run;
#   - the units, installed under a private prefix, pass `systemd-analyze verify` with no
#     complaint at all, and carry the settings docs/operations.md promises;
#   - a secret handed over the way systemd's LoadCredential= does on tmpfs (root-owned 0400
#     plus an ACL granting our user read: `ls` shows 0440) is accepted by tlscache-daemon, and
#     SIGHUP (the units' ExecReload) leaves the daemon running.
. "$(dirname "$0")/../lib/common.sh"
need groff systemd-analyze cmake python3
trap cleanup EXIT
tlsc_tmpdir
while read -r v; do unset "$v"; done < <(compgen -e | grep '^TLSCACHE_')

BINS=(server/tlscache-server:8 cache-daemon/tlscache-daemon:8 bench/tlscache-bench:1 ctl/tlscache-ctl:8)

# ---- man pages against --help ----
# flags_of PROG: the flags of its --help list, one a line ("--cert").
flags_of() { "$1" --help | grep -oE '^  (-[a-z], )?--[a-z0-9-]+' | sed -E 's/^  (-[a-z], )?//' | sort -u; }
# man_text PAGE: the page as text, plain ASCII, no hyphenation, wide lines.
man_text() { groff -man -Tascii -P-cbou -rHY=0 -rLL=200n "$1" 2>&1; }
# missing_in_man PROG PAGE: the --help flags and variables with no entry in the page (prints them).
missing_in_man() {
    local text opts f v miss=""
    text=$(man_text "$2")
    opts=$(awk '/^OPTIONS$/ { on = 1; next } /^[A-Z]/ { on = 0 } on' <<<"$text") # the OPTIONS section alone
    for f in $(flags_of "$1"); do
        grep -qE "^ +(-[a-z], )?$f( |\$)" <<<"$opts" || miss+=" $f"
    done
    for v in $("$1" --help | grep -oE 'env TLSCACHE_[A-Z0-9_]+' | sed 's/^env //' | sort -u); do
        grep -qE "(^| )$v( |\$)" <<<"$text" || miss+=" $v"
    done
    [ -z "$miss" ] || { echo "missing from $2:$miss"; return 1; }
}
for entry in "${BINS[@]}"; do
    bin=$TLSC_BIN/${entry%%:*} sec=${entry##*:} name=$(basename "${entry%%:*}")
    page=$TLSC_BIN/man/$name.$sec
    check "$name: the build made $name.$sec" [ -s "$page" ]
    check "$name: at least 10 flags in --help" [ "$(flags_of "$bin" | wc -l)" -ge 10 ]
    check "$name: every --help flag and variable has its man entry" missing_in_man "$bin" "$page"
    check "$name: the page is what --man prints now" cmp -s <("$bin" --man) "$page"
    check "$name: groff -ww finds no fault" [ -z "$(groff -man -ww -z "$page" 2>&1)" ]
    # The man page does not leak into --help (the flag stays hidden).
    check "$name: --man is not in --help" bash -c "! '$bin' --help | grep -q -- '--man'"
    v=$("$bin" --version)
    check "$name: --version: program and version first" [ "$(head -n1 <<<"$v")" = "$name $(sed -nE 's/^project\(tlscache VERSION ([0-9.]+).*/\1/p' "$TLSC_ROOT/CMakeLists.txt")" ]
    check "$name: --version: the OpenSSL it runs with" grep -qF "$(openssl version | sed -E 's/.*\(Library: (.*)\)$/\1/; s/^(OpenSSL [^ ]+).*/\1/')" <<<"$v"
    check "$name: --version: libuv and hiredis" [ "$(grep -cE '^(libuv|hiredis) [0-9]+\.[0-9]+\.[0-9]+' <<<"$v")" = 2 ]
done

# ---- cmake --install into a DESTDIR ----
D=$TLSC_TMP/destdir
quiet() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" | tail -20; return 1; }; }
check "cmake --install --prefix /usr/local (DESTDIR)" quiet env DESTDIR="$D" cmake --install "$TLSC_BIN" --prefix /usr/local
installed_all() {
    local f miss=""
    for f in bin/tlscache-server bin/tlscache-daemon bin/tlscache-bench bin/tlscache-ctl share/man/man8/tlscache-ctl.8 \
        share/man/man8/tlscache-server.8 \
        share/man/man8/tlscache-daemon.8 share/man/man1/tlscache-bench.1 lib/systemd/system/tlscache-server.service \
        lib/systemd/system/tlscache-daemon.service etc/tlscache/server.env etc/tlscache/daemon.env \
        share/doc/tlscache/README.md share/doc/tlscache/design.md; do
        [ -s "$D/usr/local/$f" ] || miss+=" $f"
    done
    [ -z "$miss" ] || { echo "not installed:$miss"; return 1; }
}
check "binaries, man pages, units, env files and docs installed" installed_all
check "nothing installed outside the prefix" [ "$(cd "$D" && find . -mindepth 1 -maxdepth 2 | sort | tr '\n' ' ')" = "./usr ./usr/local " ]
check "the installed server runs" quiet "$D/usr/local/bin/tlscache-server" --version
check "the installed daemon runs" quiet "$D/usr/local/bin/tlscache-daemon" --version
check "units name the installed binary and env file" grep -qx 'ExecStart=/usr/local/bin/tlscache-server' "$D/usr/local/lib/systemd/system/tlscache-server.service"
check "units read /usr/local/etc/tlscache/daemon.env" grep -qx 'EnvironmentFile=-/usr/local/etc/tlscache/daemon.env' "$D/usr/local/lib/systemd/system/tlscache-daemon.service"
# env_covers PROG FILE: every variable of --help is in FILE, commented out, with its flag above.
env_covers() {
    local v miss=""
    for v in $("$1" --help | grep -oE 'env TLSCACHE_[A-Z0-9_]+' | sed 's/^env //' | sort -u); do
        [ "$v" = TLSCACHE_PFX_PASS ] && continue   # a secret, not a flag: not in the example
        [ "$v" = TLSCACHE_REDIS_PASS ] && continue # the same (--redis-pass-file or a credential instead)
        [ "$v" = TLSCACHE_REDIS_SENTINEL_PASS ] && continue # the same (--redis-sentinel-pass-file)
        grep -qx "#$v=" "$2" || miss+=" $v"
    done
    [ -z "$miss" ] || { echo "missing from $2:$miss"; return 1; }
    ! grep -vE '^(#.*)?$' "$2" # nothing set: every line a comment or blank
}
check "server.env: every variable, commented" env_covers "$TLSC_BIN/server/tlscache-server" "$D/usr/local/etc/tlscache/server.env"
check "daemon.env: every variable, commented" env_covers "$TLSC_BIN/cache-daemon/tlscache-daemon" "$D/usr/local/etc/tlscache/daemon.env"

# ---- systemd-analyze verify ----
# Under a private prefix the units' ExecStart paths exist here, and MANPATH lets verify find
# the Documentation= pages. verify exits 0 even on an unknown key or a bad value (it only
# prints them), so a clean result is: status 0 and no output at all.
P=$TLSC_TMP/prefix
check "cmake --install --prefix (private)" quiet cmake --install "$TLSC_BIN" --prefix "$P"
verify_clean() {
    local out rc=0
    out=$(MANPATH=$P/share/man systemd-analyze verify "$@" 2>&1) || rc=$?
    [ "$rc" = 0 ] && [ -z "$out" ] || { echo "systemd-analyze verify: status $rc: $out"; return 1; }
}
check "systemd-analyze verify: both units, no complaint" verify_clean "$P"/lib/systemd/system/tlscache-server.service "$P"/lib/systemd/system/tlscache-daemon.service
# unit_has UNIT LINE...: every LINE is in UNIT, whole.
unit_has() {
    local u=$1 l miss=""
    shift
    for l in "$@"; do grep -qxF -- "$l" "$u" || miss+=" [$l]"; done
    [ -z "$miss" ] || { echo "$u lacks:$miss"; return 1; }
}
common=('ExecReload=/bin/kill -HUP $MAINPID' 'User=tlscache' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes'
    'LimitMEMLOCK=16M' "LoadCredential=cluster-secret:$P/etc/tlscache/cluster.secret")
check "server unit: reload, user, hardening, credential, capability" unit_has "$P/lib/systemd/system/tlscache-server.service" \
    "${common[@]}" 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' 'AmbientCapabilities=CAP_NET_BIND_SERVICE' \
    'Environment=TLSCACHE_SEAL_SECRET_FILE=%d/cluster-secret'
check "daemon unit: reload, user, hardening, credential, no capability" unit_has "$P/lib/systemd/system/tlscache-daemon.service" \
    "${common[@]}" 'CapabilityBoundingSet=' 'Environment=TLSCACHE_DAEMON_SECRET_FILE=%d/cluster-secret'
# The check itself, broken once: a misspelt value must not pass.
sed 's/^ProtectSystem=strict$/ProtectSystem=strikt/' "$P/lib/systemd/system/tlscache-daemon.service" >"$TLSC_TMP/bad.service"
verify_refuses() { ! verify_clean "$@" >/dev/null; }
check "systemd-analyze verify: a bad value is caught" verify_refuses "$TLSC_TMP/bad.service"

# ---- a credential as systemd hands it over, and SIGHUP ----
C=$TLSC_TMP/credentials
mkdir -m 0500 "$C" 2>/dev/null || mkdir "$C"
chmod 0700 "$C"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$C/cluster-secret"
chmod 0400 "$C/cluster-secret"
# "user:<us>:r" as setfacl would write it (POSIX ACL xattr, version 2): mask r, group and other none.
acl_ok=0
if python3 - "$C/cluster-secret" <<'PY'; then acl_ok=1; fi
import os, struct, sys
e = lambda tag, perm, i=0xffffffff: struct.pack('<HHI', tag, perm, i)
v = struct.pack('<I', 2) + e(1, 4) + e(2, 4, os.geteuid()) + e(4, 0) + e(0x10, 4) + e(0x20, 0)
os.setxattr(sys.argv[1], 'system.posix_acl_access', v)
PY
check "the credential file shows group bits (an ACL), as systemd's on tmpfs" [ "$acl_ok:$(stat -c %a "$C/cluster-secret")" = 1:440 ]
chmod 0500 "$C"
SOCK=$TLSC_TMP/keyd.sock
TLSCACHE_DAEMON_SECRET_FILE=$C/cluster-secret TLSCACHE_DAEMON_UNIX=$SOCK TLSCACHE_DAEMON_GRACE_MS=0 \
    "$TLSC_BIN/cache-daemon/tlscache-daemon" --node pkgtest >"$TLSC_TMP/daemon.log" 2>&1 &
DPID=$!
track "$DPID"
check "tlscache-daemon starts on the credential (env from the unit's variables)" wait_for 20 "daemon listening" log_has "$TLSC_TMP/daemon.log" 'listening'
check "SIGHUP sent" kill -HUP "$DPID"
check "SIGHUP is logged" wait_for 10 "SIGHUP logged" log_has "$TLSC_TMP/daemon.log" 'SIGHUP: nothing to reload'

check "the daemon still runs after SIGHUP" kill -0 "$DPID"
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
check "SIGTERM: the daemon exits 0" [ "$rc" = 0 ]
no_secret_in() { ! grep -qF "$(cat "$C/cluster-secret")" "$1"; }
check "no secret in the daemon's log" no_secret_in "$TLSC_TMP/daemon.log"
finish
