#!/usr/bin/env bash
# Writes the cluster's secrets into deploy/secrets/ (git-ignored, never in an image), once:
#   ca.crt ca.key            a private CA for the cluster (clients verify the nodes with ca.crt)
#   tls.crt tls.key          the nodes' certificate (ECDSA P-256) signed by that CA, for the
#                            names in TLSCACHE_SERVER_NAMES (default tlscache.test, *.tlscache.test,
#                            localhost, lb, 127.0.0.1)
#   cluster.psk              the key daemon's cluster secret (32 random bytes, hex)
#   redis-admin.password     the Redis ACL user "admin" (a person with redis-cli)
#   redis-tlscache.password  the Redis ACL user "tlscache" (the workers)
#   redis-ro.password        the Redis ACL user "tlscache-ro" (read-only: the bench's --redis)
#   redis-replica.password   the Redis ACL user "replica" (a replica syncing from its master)
#   redis-sentinel.password  the Redis ACL user "sentinel" (Sentinel watching the data nodes)
#   redis-users.acl          Redis ACL file (passwords as SHA-256 hashes only)
#   redis-url, redis-ro-url  redis://USER:PASSWORD@redis:6379/0 for the workers / a read-only
#                            client (the compose bench takes redis-ro.password alone)
#   redis-ha.conf            the data nodes' config for docker-compose.sentinel.yml (the
#                            replication login; includes the image's tlscache.conf)
#   sentinel.conf            the sentinels' config (the master to watch, their login to it)
#   redis-sentinel-url       redis-sentinel://tlscache:PASSWORD@sentinel1:26379,.../tlscache/0
# Existing files are kept (idempotent); --force makes everything anew (rotation: then recreate
# the containers). Files are root:10000 mode 0640 when run as root (group 10000 is the
# images' tlscache-secrets group), else 0644; the folder is 0700 either way.
# Env: TLSCACHE_SECRETS_DIR, TLSCACHE_SERVER_NAMES (comma-separated DNS names / IPs),
#      TLSCACHE_REDIS_PREFIX (key prefix the tlscache ACL user is limited to, default tlscache).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${TLSCACHE_SECRETS_DIR:-$ROOT/deploy/secrets}
NAMES=${TLSCACHE_SERVER_NAMES:-tlscache.test,*.tlscache.test,localhost,lb,127.0.0.1}
PREFIX=${TLSCACHE_REDIS_PREFIX:-tlscache}
FORCE=0
[ "${1:-}" = --force ] && FORCE=1

case $PREFIX in '' | *[!A-Za-z0-9_.:-]*) echo "gen-secrets: bad TLSCACHE_REDIS_PREFIX '$PREFIX'" >&2; exit 2 ;; esac
command -v openssl >/dev/null || { echo "gen-secrets: needs the openssl command" >&2; exit 2; }

umask 077
mkdir -p "$DIR"
chmod 700 "$DIR"
[ "$FORCE" = 1 ] && rm -f "$DIR"/{ca,tls}.{crt,key} "$DIR"/cluster.psk "$DIR"/redis-*

made=()
need() { [ ! -s "$DIR/$1" ]; }
rand_hex() { openssl rand -hex "$1"; }

for u in admin tlscache ro replica sentinel; do
    if need "redis-$u.password"; then rand_hex 24 >"$DIR/redis-$u.password"; made+=("redis-$u.password"); fi
done
if need cluster.psk; then rand_hex 32 >"$DIR/cluster.psk"; made+=(cluster.psk); fi

if need ca.key || need ca.crt; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
        -subj "/O=tlscache/CN=tlscache cluster CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
    rm -f "$DIR/tls.crt"
    made+=(ca.crt ca.key)
fi
if need tls.key || need tls.crt; then
    san=""
    IFS=, read -r -a names <<<"$NAMES"
    for n in "${names[@]}"; do
        case $n in
        *[!0-9.]*) [[ $n == *:* ]] && san+="IP:$n," || san+="DNS:$n," ;;
        *) san+="IP:$n," ;;
        esac
    done
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
        -subj "/O=tlscache/CN=${names[0]}" -keyout "$DIR/tls.key" -out "$DIR/tls.csr" 2>/dev/null
    openssl x509 -req -in "$DIR/tls.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days 825 -sha256 -out "$DIR/tls.crt" \
        -extfile <(printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "${san%,}") 2>/dev/null
    rm -f "$DIR/tls.csr" "$DIR/ca.srl"
    made+=(tls.crt tls.key)
fi

sha() { printf '%s' "$(cat "$1")" | openssl dgst -sha256 -r | cut -d' ' -f1; }
# The workers' commands: the session store (MULTI/HSET/EXPIRE/EXEC), the lookup (HGETALL/HGET;
# EVAL of the one-key script that takes a TLS 1.3 ticket: its commands obey these rules too),
# the per-worker stats (HSET/HINCRBY/EXPIRE), ROLE (a Sentinel URL: is this node the master),
# WAIT (--store-replicas), connection set-up (AUTH is always allowed, SELECT,
# PING, CLIENT SETNAME). Keys: only "$PREFIX:*", which takes in the local cache's per-node marker
# "$PREFIX:l1:NODE" (TTL, EXPIRE, MULTI/HSET/EXPIRE/EXEC after a flush). Channels: only
# "$PREFIX:revoked", and only to SUBSCRIBE (the master's revocation feed for the local cache,
# server/revoke.c; without it a node's local cache never serves); tlscache-ctl publishes there
# as "admin".
{
    echo "user default off resetkeys resetchannels -@all"
    echo "user admin on #$(sha "$DIR/redis-admin.password") ~* &* +@all"
    echo "user tlscache on #$(sha "$DIR/redis-tlscache.password") resetchannels ~$PREFIX:* &$PREFIX:revoked -@all" \
        "+ping +select +hello +client|setname +client|id +multi +exec +discard +eval +subscribe +unsubscribe" \
        "+role +wait" \
        "+hset +hmset +hsetnx +hget +hmget +hgetall +hexists +hdel +hincrby" \
        "+expire +pexpire +ttl +pttl +exists +del +unlink +type +scan"
    echo "user tlscache-ro on #$(sha "$DIR/redis-ro.password") resetchannels %R~$PREFIX:* -@all" \
        "+ping +select +hello +client|setname +hget +hmget +hgetall +ttl +pttl +exists +type +scan"
    # docker-compose.sentinel.yml: a replica's login to its master, and Sentinel's to the data
    # nodes (the commands Redis's Sentinel documentation lists for a Sentinel ACL user).
    echo "user replica on #$(sha "$DIR/redis-replica.password") resetchannels -@all +psync +replconf +ping"
    echo "user sentinel on #$(sha "$DIR/redis-sentinel.password") resetchannels &__sentinel__:hello -@all" \
        "+multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info" \
        "+client|setname +client|kill +script|kill"
} >"$DIR/redis-users.acl.new"
mv "$DIR/redis-users.acl.new" "$DIR/redis-users.acl"
printf 'redis://tlscache:%s@redis:6379/0\n' "$(cat "$DIR/redis-tlscache.password")" >"$DIR/redis-url"
printf 'redis://tlscache-ro:%s@redis:6379/0\n' "$(cat "$DIR/redis-ro.password")" >"$DIR/redis-ro-url"

# docker-compose.sentinel.yml: a master ("redis"), a replica and three sentinels. Every data
# node carries the replication login (after a failover the old master syncs from the new one).
{
    echo "include /etc/redis/tlscache.conf"
    echo "masteruser replica"
    echo "masterauth $(cat "$DIR/redis-replica.password")"
    # A replica loads the master's data straight from the socket: /data is a tmpfs the redis
    # user cannot create files in, and nothing needs to touch a disk.
    echo "repl-diskless-load swapdb"
} >"$DIR/redis-ha.conf"
# Sentinel rewrites its config: the container copies this one to a tmpfs first. Hostnames,
# not IPs, so a restarted container (new IP) is still found.
{
    echo "port 26379"
    echo "bind 0.0.0.0"
    echo "protected-mode no"
    echo "dir /tmp"
    echo "sentinel resolve-hostnames yes"
    echo "sentinel announce-hostnames yes"
    echo "sentinel monitor tlscache redis 6379 2"
    echo "sentinel auth-user tlscache sentinel"
    echo "sentinel auth-pass tlscache $(cat "$DIR/redis-sentinel.password")"
    echo "sentinel down-after-milliseconds tlscache ${TLSCACHE_SENTINEL_DOWN_MS:-3000}"
    echo "sentinel failover-timeout tlscache 20000"
    echo "sentinel parallel-syncs tlscache 1"
} >"$DIR/sentinel.conf"
printf 'redis-sentinel://tlscache:%s@sentinel1:26379,sentinel2:26379,sentinel3:26379/tlscache/0\n' \
    "$(cat "$DIR/redis-tlscache.password")" >"$DIR/redis-sentinel-url"

for f in "$DIR"/*; do
    if [ "$(id -u)" = 0 ]; then chown 0:10000 "$f" && chmod 640 "$f"; else chmod 644 "$f"; fi
done
[ "$(id -u)" = 0 ] && chmod 600 "$DIR/ca.key"  # nothing in a container needs the CA key
if [ ${#made[@]} -gt 0 ]; then echo "gen-secrets: made ${made[*]} in $DIR" >&2; else echo "gen-secrets: $DIR up to date" >&2; fi
