#!/usr/bin/env bash
# rediss://: nodes reach a redis-server that speaks only TLS (--tls-port, client certificates
# required) with --redis-ca and --redis-cert/--redis-key, authenticate with --redis-pass-file,
# and a session made on one node resumes on the other, by IP address and by host name. The
# local cache's revocation feed subscribes over TLS too: the cache serves hits, and a revocation
# published there drops the session. A node given another CA, or an address the certificate
# does not name, logs one error line that says so (one for its workers, one for its feed) and
# keeps serving full handshakes.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq
trap cleanup EXIT
tlsc_tmpdir
P=$TLSC_TMP/pki
make_test_pki "$P" || exit 1

# A client certificate for the nodes (clientAuth), and a second CA that vouches for nothing here.
(
    cd "$P" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=tlscache-node -keyout client.key \
            -out client.csr 2>/dev/null &&
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out client.pem 2>/dev/null &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
            -keyout other-ca.key -out other-ca.pem 2>/dev/null
) || { echo "cannot make the client certificate" >&2; exit 1; }
(umask 077 && echo 'tls pass word' >"$TLSC_TMP/redis.pass")

# Redis on TLS only, on 127.0.0.1 and 127.0.0.2; its certificate (default.pem) names
# localhost and 127.0.0.1, not 127.0.0.2.
RP=$(free_port)
mkdir -p "$TLSC_TMP/redis"
redis-server --bind 127.0.0.1 127.0.0.2 --port 0 --tls-port "$RP" --tls-cert-file "$P/default.pem" \
    --tls-key-file "$P/default.key" --tls-ca-cert-file "$P/ca.pem" --tls-auth-clients yes \
    --requirepass 'tls pass word' --save '' --appendonly no --dir "$TLSC_TMP/redis" \
    --logfile "$TLSC_TMP/redis/redis.log" --daemonize no &
track $!
wait_port "$RP" 10 || { tail "$TLSC_TMP/redis/redis.log"; exit 1; }
rcli() { redis-cli --tls --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" -p "$RP" --pass 'tls pass word' \
    --no-auth-warning "$@"; }

# node NAME PORT URL [flags...]: one node with $WORKERS (2) workers; logs in $TLSC_TMP/NAME.log.
node() {
    local name=$1 port=$2 url=$3
    shift 3
    "$SERVER_BIN" --listen "127.0.0.1:$port" --workers "${WORKERS:-2}" --node "$name" --cluster test \
        --cert "$P/a.pem" --key "$P/a.key" --redis "$url" --redis-pass-file "$TLSC_TMP/redis.pass" \
        --lookup-timeout 200 --store-timeout 500 "$@" >>"$TLSC_TMP/$name.log" 2>&1 &
    track $!
    wait_port "$port" 15 || { tail -20 "$TLSC_TMP/$name.log" >&2; return 1; }
}
GOODTLS=(--redis-ca "$P/ca.pem" --redis-cert "$P/client.pem" --redis-key "$P/client.key")

PA=$(free_port)
PB=$(free_port)
node A "$PA" "rediss://127.0.0.1:$RP" "${GOODTLS[@]}" || exit 1
node B "$PB" "rediss://localhost:$RP/0" "${GOODTLS[@]}" || exit 1
check "node_by_ip_address_connects_over_tls" \
    wait_for 15 "both of A's workers connected" bash -c '[ "$(grep -c "redis rediss://127.0.0.1:'"$RP"'/0: connected" "$1")" = 2 ]' _ "$TLSC_TMP/A.log"
check "node_by_host_name_connects_over_tls" \
    wait_for 15 "B connected" log_has "$TLSC_TMP/B.log" "redis rediss://localhost:$RP/0: connected"

S=$TLSC_TMP/sess
for v in 1.2 1.3; do
    r1=$(sget "$PA" "$v" a.example "" "$S.$v")
    r2=$(sget "$PB" "$v" a.example "$S.$v" "")
    check "tls$v: first handshake on A is full" [ "$(jfield "$r1" resumed)/$(jfield "$r1" node)" = false/A ]
    check "tls$v: session made on A resumes on B through Redis over TLS" [ "$(jfield "$r2" resumed)/$(jfield "$r2" node)" = true/B ]
done
sessions_in_redis() { [ "$(rcli --scan --pattern 'tlscache:sess:*' | grep -c .)" -ge 1 ]; }
check "sessions_are_in_the_tls_redis" sessions_in_redis

# --- the local cache with rediss://: its revocation feed speaks TLS -------------------------
# Redis listens on TLS only: a feed that subscribes at all subscribed over TLS (with AUTH).
subscribers() { local n; n=$(rcli pubsub numsub tlscache:revoked | tail -1); echo "subscribers: $n"; [ "$n" = 2 ]; }
check "both_revocation_feeds_subscribe_over_tls" wait_for 15 "A's and B's feeds on tlscache:revoked" subscribers
l1_hits_ge() { # l1_hits_ge N: lookups_l1_hit summed over the workers' stats hashes is N or more
    local total=0 k v
    for k in $(rcli --scan --pattern 'tlscache:stats:*'); do
        v=$(rcli hget "$k" lookups_l1_hit)
        total=$((total + ${v:-0}))
    done
    echo "lookups_l1_hit=$total"
    [ "$total" -ge "$1" ]
}
# A session made on A, then deleted from Redis without a message: only A's local cache has it.
sget "$PA" 1.2 a.example "" "$S.l1" >/dev/null
key="tlscache:sess:$(sess_id "$S.l1")"
check "local_cache: the session is in Redis" [ "$(rcli exists "$key")" = 1 ]
rcli del "$key" >/dev/null
hits=0
for _ in 1 2 3 4; do
    r=$(sget "$PA" 1.2 a.example "$S.l1" "")
    [ "$(jfield "$r" resumed)" = true ] && hits=$((hits + 1))
done
check "local_cache_serves_with_rediss (4 resumptions from it, got $hits)" [ "$hits" = 4 ]
check "local_cache_hits_are_counted" wait_for 5 "lookups_l1_hit >= 4" l1_hits_ge 4
# Revocation over TLS: made on A, resumed on B (both local caches hold it), DEL + PUBLISH.
revoke_on_two_nodes "$PA" "$PB" "revoke over TLS"
# A client that speaks RESP in the clear to a TLS port is logged by Redis as "wrong version number".
check "nothing_reached_redis_in_the_clear" bash -c '! grep -qi "wrong version number" "$1"' _ "$TLSC_TMP/redis/redis.log"
check "the_password_never_shows_in_the_logs" bash -c '! grep -q "pass word" "$1" "$2"' _ "$TLSC_TMP/A.log" "$TLSC_TMP/B.log"

# Another CA: one error line naming --redis-ca; the node serves full handshakes all the same.
PC=$(free_port)
WORKERS=1 node C "$PC" "rediss://127.0.0.1:$RP" --redis-ca "$P/other-ca.pem" --redis-cert "$P/client.pem" --redis-key "$P/client.key" || exit 1
check "wrong_ca_is_one_error_line_naming_redis_ca" \
    wait_for 15 "the CA error" log_has "$TLSC_TMP/C.log" "error: redis rediss://127.0.0.1:$RP/0: TLS handshake failed: Redis's certificate: .*--redis-ca"
rc=$(sget "$PC" 1.3 a.example "" "")
check "wrong_ca_node_still_serves_full_handshakes" [ "$(jfield "$rc" resumed)/$(jfield "$rc" node)" = false/C ]
check "wrong_ca_said_once" [ "$(grep -c "redis rediss://.*TLS handshake failed" "$TLSC_TMP/C.log")" = 1 ]
check "wrong_ca_feed_is_one_error_line_naming_redis_ca" wait_for 15 "the feed's CA error" log_has "$TLSC_TMP/C.log" \
    "error: revocation feed tlscache:revoked: TLS handshake failed: Redis's certificate: .*--redis-ca"
check "wrong_ca_feed_said_once" [ "$(grep -c "revocation feed .*TLS handshake failed" "$TLSC_TMP/C.log")" = 1 ]
check "wrong_ca_never_connected" bash -c '! grep -q ": connected" "$1"' _ "$TLSC_TMP/C.log"

# An address the certificate does not name (127.0.0.2): one error line naming the host.
PD=$(free_port)
WORKERS=1 node D "$PD" "rediss://127.0.0.2:$RP" "${GOODTLS[@]}" || exit 1
check "wrong_host_is_one_error_line_naming_the_host" \
    wait_for 15 "the host error" log_has "$TLSC_TMP/D.log" "error: redis rediss://127.0.0.2:$RP/0: TLS handshake failed: Redis's certificate does not name 127.0.0.2"
rd=$(sget "$PD" 1.2 a.example "" "")
check "wrong_host_node_still_serves_full_handshakes" [ "$(jfield "$rd" resumed)/$(jfield "$rd" node)" = false/D ]
check "wrong_host_said_once" [ "$(grep -c "redis rediss://.*TLS handshake failed" "$TLSC_TMP/D.log")" = 1 ]
check "wrong_host_feed_is_one_error_line_naming_the_host" wait_for 15 "the feed's host error" log_has "$TLSC_TMP/D.log" \
    "error: revocation feed tlscache:revoked: TLS handshake failed: Redis's certificate does not name 127.0.0.2"

# rediss:// without --redis-ca, and a client certificate without its key: refused at start.
out=$("$SERVER_BIN" --check --listen "127.0.0.1:$(free_port)" --cert "$P/a.pem" --key "$P/a.key" \
    --redis "rediss://127.0.0.1:$RP" 2>&1)
check "rediss_without_redis_ca_is_refused" grep -q "^tlscache-server: --redis: rediss:// needs --redis-ca" <<<"$out"
out=$("$SERVER_BIN" --check --listen "127.0.0.1:$(free_port)" --cert "$P/a.pem" --key "$P/a.key" \
    --redis "rediss://127.0.0.1:$RP" --redis-ca "$P/garbage.pem" 2>&1)
check "unreadable_redis_ca_is_refused_at_start" grep -q "^tlscache-server: --redis-ca: cannot load CA certificates from $P/garbage.pem" <<<"$out"
finish
