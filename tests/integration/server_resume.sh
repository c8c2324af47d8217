#!/usr/bin/env bash
# Sessions resume on any worker of any node through Redis, TLS 1.2 session IDs and TLS 1.3
# stateful tickets, with openssl s_client and with Node.js; a session for one SNI name is not
# resumed for another; the hash in Redis tells a person what the session is.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq node python3
# The nodes run the server's default lookup / store timeouts (10 / 50 ms), what users get: the
# ctest label "defaults" runs this script on the optimized build (scripts/test.sh). A sanitizer
# build runs it with GENEROUS_TIMEOUTS=1 (tests/integration/CMakeLists.txt).
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
PA=$(free_port)
PB=$(free_port)
start_node A "$PA" || exit 1
start_node B "$PB" || exit 1
S=$TLSC_TMP/sess

# --- one node to the other --------------------------------------------------------------
for v in 1.2 1.3; do
    r1=$(sget "$PA" "$v" a.example "" "$S.$v.a")
    r2=$(sget "$PB" "$v" a.example "$S.$v.a" "$S.$v.b")
    check "tls$v: first handshake on node A is full" [ "$(jfield "$r1" resumed)/$(jfield "$r1" node)" = "false/A" ]
    check "tls$v: session made on node A resumes on node B" [ "$(jfield "$r2" resumed)/$(jfield "$r2" node)" = "true/B" ]
    check "tls$v: negotiated version is TLSv$v" [ "$(jfield "$r2" protocol)" = "TLSv$v" ]
done

# --- one worker to another within a node --------------------------------------------------
for v in 1.2 1.3; do
    ok=0
    for _ in $(seq 30); do
        r1=$(sget "$PA" "$v" a.example "" "$S.w")
        w1=$(jfield "$r1" worker)
        cur=$S.w
        for _ in $(seq 10); do
            rm -f "$S.w2"
            r2=$(sget "$PA" "$v" a.example "$cur" "$S.w2") || break
            [ -s "$S.w2" ] && cp "$S.w2" "$S.w"
            if [ "$(jfield "$r2" resumed)" = true ] && [ "$(jfield "$r2" worker)" != "$w1" ]; then ok=1; break; fi
            [ "$(jfield "$r2" resumed)" = true ] || break
        done
        [ $ok = 1 ] && break
    done
    check "tls$v: session from worker $w1 resumes on another worker of node A" [ $ok = 1 ]
done

# --- TLS 1.3 stateful tickets are single use; each resumption hands out a fresh one ------
r1=$(sget "$PA" 1.3 a.example "" "$S.once")
r2=$(sget "$PB" 1.3 a.example "$S.once" "$S.next")
r3=$(sget "$PA" 1.3 a.example "$S.once" "")
r4=$(sget "$PA" 1.3 a.example "$S.next" "")
check "tls1.3: ticket resumes once" [ "$(jfield "$r2" resumed)" = true ]
check "tls1.3: the same ticket offered again gets a full handshake" [ "$(jfield "$r3" resumed)" = false ]
check "tls1.3: the ticket handed out on resumption resumes" [ "$(jfield "$r4" resumed)" = true ]

# --- TLS 1.3 identities carry the tag 13131313, TLS 1.2 IDs never; their take is not a script ---
# Two nodes without a node-local cache, so every TLS 1.3 resumption takes the record from Redis.
PC=$(free_port)
PD=$(free_port)
WORKERS=1 start_node C "$PC" --local-cache 0 || exit 1
WORKERS=1 start_node D "$PD" --local-cache 0 || exit 1
tagged_keys() { redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:sess:13131313*' | sort; }
sget "$PC" 1.2 a.example "" "$S.t12" >/dev/null
id12=$(openssl sess_id -in "$S.t12" -noout -text | awk '/Session-ID:/{print tolower($2)}')
# untagged_stored ID: a 64-hex-digit ID that does not start with the TLS 1.3 tag, stored in Redis.
untagged_stored() { [ "${#1}" = 64 ] && [ "${1:0:8}" != 13131313 ] && [ "$(redis-cli -p "$REDIS_PORT" exists "tlscache:sess:$1")" = 1 ]; }
check "tls1.2: the session is stored under its 64-hex-digit ID, untagged ($id12)" untagged_stored "$id12"
tagged_keys >"$S.k0"
redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
r1=$(sget "$PC" 1.3 a.example "" "$S.t13")
tagged_keys >"$S.k1"
key13=$(comm -13 "$S.k0" "$S.k1")
check "tls1.3: the ticket is stored under a tagged 64-hex-digit key ($key13)" \
    grep -qxE 'tlscache:sess:13131313[0-9a-f]{56}' <<<"$key13"
r2=$(sget "$PD" 1.3 a.example "$S.t13" "")
check "tls1.3, --local-cache 0: the ticket made on C resumes on D" [ "$(jfield "$r2" resumed)/$(jfield "$r2" node)" = true/D ]
check "tls1.3: the resumption took the record from Redis" [ "$(redis-cli -p "$REDIS_PORT" exists "$key13")" = 0 ]
r3=$(sget "$PC" 1.3 a.example "$S.t13" "")
check "tls1.3, --local-cache 0: the same ticket on C again is a full handshake" [ "$(jfield "$r3" resumed)" = false ]
# no_eval_two_takes: Redis ran no EVAL since the reset, and HGET at least twice (D's take, C's).
no_eval_two_takes() {
    local cs
    cs=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r')
    echo "commandstats: $(grep -E '^cmdstat_(eval|hget|del|exec):' <<<"$cs" | cut -d, -f1 | tr '\n' ' ')"
    ! grep -q '^cmdstat_eval' <<<"$cs" && [ "$(sed -n 's/^cmdstat_hget:calls=\([0-9]*\),.*/\1/p' <<<"$cs")" -ge 2 ]
}
check "tls1.3: the takes sent no EVAL (MULTI HGET DEL EXEC instead)" no_eval_two_takes

# --- SNI binding ----------------------------------------------------------------------------
for v in 1.2 1.3; do
    sget "$PA" "$v" a.example "" "$S.sni" >/dev/null
    r=$(sget "$PB" "$v" b.example "$S.sni" "")
    check "tls$v: session for a.example is not resumed for b.example" [ "$(jfield "$r" resumed)/$(jfield "$r" sni)" = "false/b.example" ]
    sget "$PA" "$v" "" "" "$S.nosni" >/dev/null
    r=$(sget "$PB" "$v" a.example "$S.nosni" "")
    check "tls$v: session made without SNI is not resumed for a.example" [ "$(jfield "$r" resumed)" = false ]
    # (a TLS 1.3 stateful ticket is spent by any lookup, so make a fresh one)
    sget "$PA" "$v" "" "" "$S.nosni" >/dev/null
    r=$(sget "$PB" "$v" "" "$S.nosni" "")
    check "tls$v: session made without SNI resumes without SNI" [ "$(jfield "$r" resumed)" = true ]
done

# --- Node.js client with the seed's API -------------------------------------------------------
for v in 1.2 1.3; do
    n1=$(node "$TLSC_ROOT/tests/lib/node_client.js" --port "$PA" --sni a.example --tls "$v" --session-out "$S.node.$v")
    n2=$(node "$TLSC_ROOT/tests/lib/node_client.js" --port "$PB" --sni a.example --tls "$v" --session-in "$S.node.$v")
    check "node tls$v: 'session' event delivered a session on node A" [ "$(jfield "$n1" session_saved)/$(jfield "$n1" reused)" = "true/false" ]
    check "node tls$v: tls.connect({session}) resumes on node B (isSessionReused)" \
        [ "$(jfield "$n2" reused)/$(jfield "$n2" body.resumed)/$(jfield "$n2" body.node)" = "true/true/B" ]
done

# --- what redis-cli shows ----------------------------------------------------------------------
sget "$PA" 1.2 a.example "" "$S.show" >/dev/null
id=$(openssl sess_id -in "$S.show" -noout -text | awk '/Session-ID:/{print tolower($2)}')
key="tlscache:sess:$id"
fields=$(redis-cli -p "$REDIS_PORT" hkeys "$key" | sort | tr '\n' ' ')
check "redis hash has readable metadata fields ($fields)" [ "$fields" = "alpn cipher created der node proto sni worker " ]
check "redis hash says proto TLSv1.2, sni a.example, node A" \
    [ "$(redis-cli -p "$REDIS_PORT" hmget "$key" proto sni node | tr '\n' ' ')" = "TLSv1.2 a.example A " ]
ttl=$(redis-cli -p "$REDIS_PORT" ttl "$key")
ttl_is_session_timeout() { [ "$1" -gt 290 ] && [ "$1" -le 300 ]; }
check "session key TTL is the session timeout (300 s): $ttl" ttl_is_session_timeout "$ttl"
# stats_hashes_with_ttl N: at least N per-worker stats hashes, each with a TTL.
stats_hashes_with_ttl() {
    local keys k n=0
    keys=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:stats:*')
    for k in $keys; do [ "$(redis-cli -p "$REDIS_PORT" ttl "$k")" -gt 0 ] && n=$((n + 1)); done
    echo "stats hashes: $(tr '\n' ' ' <<<"$keys"), $n with a TTL"
    [ "$n" -ge "$1" ]
}
check "per-worker stats hashes exist with a TTL" wait_for 5 "2 stats hashes with a TTL" stats_hashes_with_ttl 2
check "stats count resumed handshakes" wait_for 5 "handshakes_resumed >= 8" redis_stat_ge handshakes_resumed 8
# (for a reader of a failure above: a lookup or store that missed its default budget is counted)
echo "# servers' counters: $(for f in lookups_hit lookups_miss lookups_timeout lookups_error stores_ok stores_error; do
    printf '%s=%s ' "$f" "$(redis_stat "$f")"; done)"

finish
