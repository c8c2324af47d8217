#!/usr/bin/env bash
# Session records in Redis without the key daemon: sealed with --seal-secret-file, so Redis
# never holds a readable master secret; two nodes with the same secret resume each other's
# sessions; a node with another secret refuses the records and says why; a start with no secret
# is refused with one line naming the alternatives; --insecure-plain-records stores readable
# records and warns at every start.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
S=$TLSC_TMP/sess
SEAL=$TLSCACHE_SEAL_SECRET_FILE # tlsc_tmpdir made it; every node below names its secret itself
unset TLSCACHE_SEAL_SECRET_FILE

PA=$(free_port)
PB=$(free_port)
start_node A "$PA" --seal-secret-file "$SEAL" || exit 1
start_node B "$PB" --seal-secret-file "$SEAL" || exit 1
sget "$PA" 1.2 a.example "" "$S.12" >/dev/null
sget "$PA" 1.3 a.example "" "$S.13" >/dev/null
r=$(sget "$PB" 1.2 a.example "$S.12" "")
check "tls1.2: a sealed session made on A resumes on B without a daemon" [ "$(jfield "$r" resumed)" = true ]
r=$(sget "$PB" 1.3 a.example "$S.13" "")
check "tls1.3: a sealed stateful ticket made on A resumes on B without a daemon" [ "$(jfield "$r" resumed)" = true ]
sget "$PA" 1.2 a.example "" "$S.12b" >/dev/null
first_bytes() { # the first byte of every der value, e.g. "S S"
    local k
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:sess:*'); do
        redis-cli -p "$REDIS_PORT" --raw hget "$k" der | head -c 1
        echo
    done | sort | uniq -c | awk '{print $2}' | tr '\n' ' '
}
check "every stored record is sealed ('S'), none plain: $(first_bytes)" [ "$(first_bytes)" = "S " ]
masters=$(for f in "$S".12 "$S".12b; do
    openssl sess_id -in "$f" -noout -text | awk '/Master-Key:/{print "raw " $NF}'
done)
check "found the master secrets to look for" [ "$(grep -c '^raw' <<<"$masters")" = 2 ]
redis-cli -p "$REDIS_PORT" save >/dev/null
check "no session master secret in Redis or its dump" \
    python3 "$TLSC_ROOT/tests/lib/scan_secrets.py" "$REDIS_PORT" "$TLSC_TMP/redis-$REDIS_PORT" <<<"$masters"

# A TLS 1.2 session ID crosses the wire in clear: offered as a TLS 1.3 PSK identity it must not
# delete the TLS 1.2 session (the single-use take is for TLS 1.3 records only). The ID here is
# 32 printable bytes so that openssl s_client can send it as an external PSK identity.
ID=tls12-session-id-of-32-bytes-xyz
key=tlscache:sess:$(printf '%s' "$ID" | od -An -tx1 | tr -d ' \n')
redis-cli -p "$REDIS_PORT" hset "$key" der planted proto TLSv1.2 >/dev/null
redis-cli -p "$REDIS_PORT" expire "$key" 300 >/dev/null
wait_for 5 "the stats" redis_stat_ge lookups_miss 0 >/dev/null
misses=$(redis_stat lookups_miss)
printf 'GET / HTTP/1.1\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PA" -tls1_3 -servername a.example \
    -psk_identity "$ID" -psk 00112233445566778899aabbccddeeff -ign_eof -quiet >/dev/null 2>&1
check "a TLS 1.2 session offered as a TLS 1.3 identity is looked up (a miss) ..." \
    wait_for 5 "the lookup" redis_stat_ge lookups_miss $((misses + 1))
check "... and not deleted ($key)" bash -c "[ \"\$(redis-cli -p $REDIS_PORT exists '$key')\" = 1 ]"

# A node with another secret: the records do not open, the handshake is full, the log says why.
OTHER=$TLSC_TMP/other.secret
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$OTHER")
PC=$(free_port)
start_node C "$PC" --seal-secret-file "$OTHER" || exit 1
sget "$PA" 1.2 a.example "" "$S.c" >/dev/null
r=$(sget "$PC" 1.2 a.example "$S.c" "")
check "a node with another secret does not resume (full handshake)" [ "$(jfield "$r" resumed)" = false ]
check "... and logs why, with a count" \
    wait_for 10 "the refusal in C.log" log_has "$TLSC_TMP/C.log" "record\\(s\\) refused.*sealed under another cluster secret"

# No secret: refused at start, one line that names the alternatives, exit 2.
out=$("$SERVER_BIN" --listen "127.0.0.1:$(free_port)" --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/a.key" 2>&1)
rc=$?
check "no sealing secret: exit 2 ($rc)" [ "$rc" = 2 ]
check "... one line naming --seal-secret-file and --insecure-plain-records ($out)" \
    bash -c '[ "$(wc -l <<<"$1")" = 1 ] && grep -q -- "--seal-secret-file" <<<"$1" && grep -q -- "--insecure-plain-records" <<<"$1"' _ "$out"
out=$("$SERVER_BIN" --cert "$TLSC_TMP/pki/a.pem" --key "$TLSC_TMP/pki/a.key" --seal-secret-file "$SEAL" --insecure-plain-records 2>&1)
check "--insecure-plain-records with a secret is a conflict, exit 2 ($out)" [ $? = 2 ]

# Plain records only when asked, and every start says so.
PD=$(free_port)
start_node D "$PD" --insecure-plain-records --redis-prefix plain || exit 1
check "--insecure-plain-records warns at start" log_has "$TLSC_TMP/D.log" "insecure-plain-records: sessions are stored readable"
sget "$PD" 1.2 a.example "" "$S.d" >/dev/null
plain_first() { local k; k=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'plain:sess:*' | head -1); redis-cli -p "$REDIS_PORT" --raw hget "$k" der | head -c 1; }
check "--insecure-plain-records stores a plain ('P') record ($(plain_first))" [ "$(plain_first)" = P ]

finish
