#!/usr/bin/env bash
# Ensures a local debian:bookworm-slim image exists.
#   1. already present            -> done
#   2. `docker pull` (short timeout) works -> done
#   3. otherwise build it here: debootstrap --variant=minbase bookworm from the Debian mirror
#      this machine's apt uses, then `docker import`.
# Idempotent: a second run is a no-op. Env: BASE_IMAGE (default debian:bookworm-slim),
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (override what /etc/apt says), PULL_TIMEOUT (s).
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
SUITE=bookworm
PULL_TIMEOUT=${PULL_TIMEOUT:-20}

log() { echo "base-image: $*" >&2; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE present"
    exit 0
fi

log "trying docker pull $BASE_IMAGE (timeout ${PULL_TIMEOUT}s)"
if timeout "$PULL_TIMEOUT" docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    log "pulled $BASE_IMAGE"
    exit 0
fi
log "pull failed: building $BASE_IMAGE locally with debootstrap"

# The first http(s) Debian URI of the host's apt configuration, for a given suite suffix
# ("" for the main archive, "-security" for the security archive). Reads one-line .list
# files and deb822 .sources files.
mirror_for() {
    local want=$1 f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        case $f in
        *.sources)
            awk -v want="$want" -v suite="$SUITE" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && uris != "") {
                        n = split(suites, s, " ")
                        for (i = 1; i <= n; i++) if (s[i] == suite want) { split(uris, u, " "); print u[1]; exit }
                    }
                    types = uris = suites = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                tolower($1) == "types:"  { $1 = ""; types = $0 }
                tolower($1) == "uris:"   { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
                tolower($1) == "suites:" { $1 = ""; suites = $0 }
                END { flush() }' "$f"
            ;;
        *)
            awk -v want="$want" -v suite="$SUITE" '
                $1 == "deb" {
                    i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite want) { print $i; exit }
                }' "$f"
            ;;
        esac
    done | head -n1
}

MIRROR=${DEBIAN_MIRROR:-$(mirror_for "")}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(mirror_for "-security")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
log "mirror $MIRROR (security: $SECURITY_MIRROR)"

command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null
}

ROOTFS=$(mktemp -d "${TMPDIR:-/var/tmp}/bookworm-rootfs.XXXXXX")
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT

keyring=()
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] &&
    keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
debootstrap --variant=minbase "${keyring[@]}" "$SUITE" "$ROOTFS" "$MIRROR" >&2

# The image's own apt sources: the same mirrors the host uses.
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# Slim it like the official -slim image: no apt lists, caches, docs, man pages, locales.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'APT::Install-Recommends "false";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends"
echo 'Acquire::Languages "none";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
# (the packages' copyright files stay, as in the official image)
find "$ROOTFS/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/*
: >"$ROOTFS/etc/machine-id" 2>/dev/null || true
echo "$SUITE-local" >"$ROOTFS/etc/hostname"

tar --numeric-owner -C "$ROOTFS" -c . |
    docker import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --message "debootstrap --variant=minbase $SUITE $MIRROR" \
        - "$BASE_IMAGE" >/dev/null
log "built $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
