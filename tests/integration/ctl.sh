#!/usr/bin/env bash
# tlscache-ctl against a real cluster (redis-server, tlscache-daemon, two tlscache-server
# nodes): sessions list/show/revoke see what the nodes stored and never print sealed bytes; a
# revoked session gets a full handshake and its key name is published on <prefix>:revoked;
# --dry-run deletes nothing; stats sums both nodes; keys status shows tags and acks, never key
# bytes; keys rotate advances the epoch, every worker acks, and the next key becomes current
# after the lead time; a worker link cannot send a control request; usage errors exit 2. Over
# rediss:// (a TLS-only Redis, client certificates required, a CA the test makes) list, show,
# stats and revoke work; another CA or a host the certificate does not name is one line, exit 1.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq python3
trap cleanup EXIT
tlsc_tmpdir
. "$TLSC_ROOT/tests/lib/ctl.sh" # ctl NAME ARGS..., resumed; outputs in $O
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
PROBE=$TLSC_BIN/cache-daemon/tlscache-keyd-probe
SECRET=$TLSC_TMP/seal.secret # the cluster secret: the link's PSK and the nodes' sealing fallback
S=$TLSC_TMP/sess

KD=$(free_port)
# A long rotation with a short lead: `keys rotate` then moves the next key to now + 2 s.
"$DAEMON" --listen "127.0.0.1:$KD" --secret-file "$SECRET" --node D --grace-ms 300 --rotate 3600 --lead 2 \
    >>"$TLSC_TMP/daemon.log" 2>&1 &
track $!
wait_port "$KD" 10 || exit 1
PA=$(free_port)
PB=$(free_port)
KEYD=(--keyd "127.0.0.1:$KD" --keyd-secret-file "$SECRET")
start_node A "$PA" --resumption cache "${KEYD[@]}" || exit 1
start_node B "$PB" --resumption cache "${KEYD[@]}" || exit 1
# The ctl reads the nodes' own variables.
export TLSCACHE_REDIS=redis://127.0.0.1:$REDIS_PORT TLSCACHE_KEYD=127.0.0.1:$KD TLSCACHE_KEYD_SECRET_FILE=$SECRET

sid() { openssl sess_id -in "$1" -noout -text 2>/dev/null | awk '/Session-ID:/ { print tolower($2) }'; }
exists() { [ "$(redis-cli -p "$REDIS_PORT" exists "tlscache:sess:$1")" = 1 ]; }
gone() { [ "$(redis-cli -p "$REDIS_PORT" exists "tlscache:sess:$1")" = 0 ]; }
# acked_all: keys status lists 4 workers (2 nodes x 2) and all acked the daemon's epoch.
acked_all() { ctl status.poll keys status | grep -q '^workers: 4 connected; 4 of the 4 listed acked epoch'; }
current_tag() { ctl status.cur keys status | awk '$2 == "current" { print $1 }'; }
next_tag() { ctl status.next keys status | awk '$2 == "next" { print $1 }'; }
epoch() { ctl status.epoch keys status | awk '/^epoch / { print $2 }'; }
is_current() { local t; t=$(current_tag); echo "current key: ${t:-none} (waiting for $1)"; [ "$t" = "$1" ]; }
check "every worker of both nodes acks the daemon's window" wait_for 20 "4 workers acked" acked_all

# --- sessions: one on each node, for two names ------------------------------------------------
sget "$PA" 1.2 a.example "" "$S.a" >/dev/null
sget "$PB" 1.2 b.example "" "$S.b" >/dev/null
sget "$PA" 1.2 b.example "" "$S.c" >/dev/null
IDA=$(sid "$S.a")
IDB=$(sid "$S.b")
IDC=$(sid "$S.c")
check "three sessions were made (ids ${IDA:0:8} ${IDB:0:8} ${IDC:0:8})" [ "${#IDA}/${#IDB}/${#IDC}" = 64/64/64 ]
check "they are stored in Redis" wait_for 5 "3 session records" exists "$IDC"
check "the session on A resumes before any revocation" [ "$(resumed "$PB" a.example "$S.a")" = true ]

ALL3="^($IDA|$IDB|$IDC) "
BC="^($IDB|$IDC) "
AC="^($IDA|$IDC) "
ctl list sessions list >/dev/null
check "sessions list shows the three sessions" [ "$(grep -cE "$ALL3" "$O/list")" = 3 ]
check "sessions list shows SNI, node and a TTL for the session on A" \
    grep -qE "^$IDA +[0-9]+ +TLSv1.2 +[A-Z0-9-]+ +a.example +- +A " "$O/list"
check "sessions list --sni b.example shows only b.example's two" \
    [ "$(ctl l2 sessions list --sni b.example | grep -cE "$BC")/$(grep -c "$IDA" "$O/l2")" = 2/0 ]
check "sessions list --node B shows only B's session" \
    [ "$(ctl l3 sessions list --node B | grep -cE "^$IDB ")/$(grep -cE "$AC" "$O/l3")" = 1/0 ]
check "sessions list --limit 1 shows one and says so" \
    [ "$(ctl l4 sessions list --limit 1 | grep -cE "^[0-9a-f]{64} ")/$(grep -c 'limit reached' "$O/l4")" = 1/1 ]
check "sessions list uses SCAN, never KEYS" \
    python3 - "$REDIS_PORT" "$CTL" <<'EOF'
import socket, subprocess, sys, time
# MONITOR sees every command the ctl sends while it lists (and the workers' stats writes).
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"MONITOR\r\n")
s.settimeout(5)
assert s.recv(100).startswith(b"+OK")
subprocess.run([sys.argv[2], "sessions", "list"], stdout=subprocess.DEVNULL, check=True)
data = b""
end = time.monotonic() + 1 # what MONITOR saw during the run is in the socket by now
s.settimeout(0.2)
while time.monotonic() < end:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        break
    data += chunk
print("commands seen:", sorted({l.split(b'"')[1].decode() for l in data.splitlines() if b'"' in l}))
sys.exit(0 if b'"SCAN"' in data and b'"KEYS"' not in data else 1)
EOF

ctl show sessions show "$IDA" >/dev/null
check "sessions show prints the readable fields" grep -qE '^sni +a\.example$' "$O/show"
check "sessions show names the daemon key that sealed the record, by tag" \
    grep -qE '^record +sealed, version 1, under daemon key [0-9a-f]{8} \([0-9]+ bytes\)$' "$O/show"
check "the sealing key's tag is one keys status shows" \
    grep -qE "^$(sed -n 's/.*under daemon key \([0-9a-f]*\).*/\1/p' "$O/show") " <(ctl st0 keys status)
ctl show3 sessions show "00${IDA:2}"
check "sessions show of an unknown ID exits 1" [ $? = 1 ]
ctl show4 sessions show not-hex
check "sessions show of a malformed ID exits 2" [ $? = 2 ]

# --- revoke: dry run, one, by node, by SNI, all -------------------------------------------------
redis-cli -p "$REDIS_PORT" subscribe tlscache:revoked >"$TLSC_TMP/revoked.txt" &
SUB=$!
track $SUB
check "a subscriber listens on tlscache:revoked" wait_for 5 "the subscription" grep -q '^subscribe' "$TLSC_TMP/revoked.txt"

check "revoke --dry-run counts one" [ "$(ctl d1 sessions revoke "$IDA" --dry-run)" = "1 session would be revoked (dry run: nothing deleted)" ]
check "revoke --dry-run deleted nothing" exists "$IDA"
check "revoke --all --dry-run counts three and deletes nothing" \
    [ "$(ctl d2 sessions revoke --all --dry-run)/$(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:sess:*' | wc -l)" = "3 sessions would be revoked (dry run: nothing deleted)/3" ]
check "revoke ID deletes one" [ "$(ctl r1 sessions revoke "$IDA")" = "1 session revoked" ]
check "the revoked record is gone from Redis" gone "$IDA"
check "the revoked session gets a full handshake" [ "$(resumed "$PB" a.example "$S.a")" = false ]
check "the revocation is published with the key name" wait_for 5 "the key on tlscache:revoked" grep -qx "tlscache:sess:$IDA" "$TLSC_TMP/revoked.txt"
check "revoking it again counts zero" [ "$(ctl r2 sessions revoke "$IDA")" = "0 sessions revoked" ]
# B holds IDB and the session its full handshake for the revoked S.a made.
check "revoke --node B deletes B's two sessions" [ "$(ctl r3 sessions revoke --node B)" = "2 sessions revoked" ]
check "B's session is gone, A's b.example one is not" gone "$IDB"
check "A's b.example session still resumes" [ "$(resumed "$PB" b.example "$S.c")" = true ]
sget "$PB" 1.2 a.example "" "$S.d" >/dev/null
IDD=$(sid "$S.d")
check "a fourth session is stored" wait_for 5 "the record" exists "$IDD"
check "revoke --sni b.example deletes only b.example's" [ "$(ctl r4 sessions revoke --sni b.example)" = "1 session revoked" ]
check "the a.example session survived --sni b.example" exists "$IDD"
check "revoke --all deletes the rest" [ "$(ctl r5 sessions revoke --all)" = "1 session revoked" ]
check "revoke --all publishes *" wait_for 5 "* on tlscache:revoked" grep -qx '\*' "$TLSC_TMP/revoked.txt"
check "every revocation was published once: 1 + 2 + 1 keys and one *" \
    [ "$(grep -cE '^(tlscache:sess:[0-9a-f]{64}|\*)$' "$TLSC_TMP/revoked.txt")" = 5 ]
check "nothing is left" [ "$(redis-cli -p "$REDIS_PORT" --scan --pattern 'tlscache:sess:*' | wc -l)" = 0 ]
ctl r6 sessions revoke --all --sni a.example
check "revoke --all with a filter is a usage error (2)" [ $? = 2 ]
ctl r7 sessions revoke
check "revoke with nothing to revoke is a usage error (2)" [ $? = 2 ]

# --- stats ------------------------------------------------------------------------------------
# Five full handshakes (S.a, S.b, S.c, S.a after its revocation, S.d) and two resumptions so far.
settled() { local s="$(redis_stat handshakes_full)/$(redis_stat handshakes_resumed)"; echo "full/resumed: $s"; [ "$s" = 5/2 ]; }
check "the stats hashes count 5 full handshakes and 2 resumptions" wait_for 5 "the counters" settled
ctl stats stats >/dev/null
check "stats has a line per node (2 workers each)" [ "$(grep -cE '^(A|B) +2 ' "$O/stats")" = 2 ]
cl=$(awk '$1 == "(cluster)"' "$O/stats")
check "the cluster line sums 4 workers, 5 full, 2 resumed, rate 28.6%: $cl" \
    [ "$(awk '{ print $2 "/" $4 "/" $5 "/" $6 }' <<<"$cl")" = "4/5/2/28.6%" ]

# --- keys ---------------------------------------------------------------------------------------
ctl st1 keys status >/dev/null
check "keys status: the header line" grep -qE '^epoch [0-9]+  rotate 3600s  ticket-lifetime 3600s  lead 2s$' "$O/st1"
check "keys status: one current and one next key, as 8-digit tags with UTC times" \
    [ "$(grep -cE '^[0-9a-f]{8}  (current|next) +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z  ' "$O/st1")" = 2 ]
check "keys status: every key line is a tag, a role and times, nothing longer" \
    [ "$(tail -n +3 "$O/st1" | grep -cvE '^([0-9a-f]{8}  (current|next|previous) |workers: |worker )')" = 0 ]
check "keys status: four worker lines" [ "$(grep -cE '^worker (A|B)/[0-9]+ acked [0-9]+ \(current\)$' "$O/st1")" = 4 ]
E0=$(epoch)
N0=$(next_tag)
C0=$(current_tag)
ctl rot keys rotate >/dev/null
check "keys rotate says the rotation was brought forward" grep -q '^rotation brought forward' "$O/rot"
E1=$(awk '/^epoch / { print $2 }' "$O/rot")
check "keys rotate advanced the epoch ($E0 -> $E1)" [ "$E1" -gt "$E0" ]
check "every worker acks the new epoch" wait_for 10 "4 workers acked epoch $E1" acked_all
check "the next key ($N0) becomes current after the lead time" wait_for 15 "key $N0 current" is_current "$N0"
check "the old current key ($C0) is previous" [ "$(ctl st2 keys status | awk -v t="$C0" '$1 == t { print $2 }')" = previous ]
sget "$PA" 1.2 a.example "" "$S.e" >/dev/null
IDE=$(sid "$S.e")
wait_for 5 "the record" exists "$IDE" >/dev/null
check "a new session is sealed under the new current key $N0" grep -q "under daemon key $N0 " <(ctl show5 sessions show "$IDE")

# A worker link (it said HELLO) may not control the daemon, whatever secret it holds.
E2=$(epoch)
"$PROBE" --connect "127.0.0.1:$KD" --secret-file "$SECRET" --worker-control >"$O/probe" 2>&1
check "a worker link sending a control request is dropped" grep -q 'workers do not send control requests' "$O/probe"
check "and nothing rotated (epoch still $E2)" [ "$(epoch)" = "$E2" ]

# Wrong secret: runtime failure (1), and the daemon says nothing.
BAD=$TLSC_TMP/other.secret
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$BAD")
ctl bad keys status --keyd-secret-file "$BAD"
check "keys status with another secret exits 1" [ $? = 1 ]
check "and says the secret is wrong" grep -q 'keyd-secret-file' "$O/bad"

# Nothing the ctl printed holds a key, a derived key or a master secret.
secrets=$("$PROBE" --connect "127.0.0.1:$KD" --secret-file "$SECRET" --once --print-secrets |
    awk '/^secret /{sub("name=","",$2); sub("secret=","",$3); print "key", $2, $3}')
check "the probe read the daemon's keys ($(grep -c '^key' <<<"$secrets"))" [ "$(grep -c '^key' <<<"$secrets")" -ge 2 ]
check "no key or derived key in any ctl output" python3 "$TLSC_ROOT/tests/lib/scan_secrets.py" "$REDIS_PORT" "$O" <<<"$secrets"

# A daemon in its restart grace period has no window: status says so, rotate refuses (exit 1).
KD2=$(free_port)
"$DAEMON" --listen "127.0.0.1:$KD2" --secret-file "$SECRET" --node D2 --grace-ms 60000 >>"$TLSC_TMP/daemon2.log" 2>&1 &
track $!
wait_port "$KD2" 10 || exit 1
ctl g1 keys status --keyd "127.0.0.1:$KD2" >/dev/null
check "keys status (--keyd over TLSCACHE_KEYD) shows the grace period and no key" \
    [ "$(grep -c 'restart grace period' "$O/g1")/$(grep -cE '^[0-9a-f]{8}  ' "$O/g1")" = 1/0 ]
ctl g2 keys rotate --keyd "127.0.0.1:$KD2"
check "keys rotate during the grace period exits 1" [ $? = 1 ]

# Records in Redis are untrusted: control bytes are shown escaped, keys that are not ours skipped.
redis-cli -p "$REDIS_PORT" hset tlscache:sess:abcd sni "$(printf 'evil\033[2J\nx')" node A >/dev/null
redis-cli -p "$REDIS_PORT" hset tlscache:sess:not-hex sni a.example >/dev/null
redis-cli -p "$REDIS_PORT" set tlscache:sess:beef not-a-hash >/dev/null
ctl hostile sessions list >/dev/null
# Left: IDE (a.example, made after the rotation) and the planted abcd.
check "a key that is not a hash is skipped, not an error" grep -q '^2 sessions shown$' "$O/hostile"
check "revoke --sni walks past it too" [ "$(ctl h2 sessions revoke --sni a.example --dry-run)" = "1 session would be revoked (dry run: nothing deleted)" ]
check "a planted control byte is printed escaped, on one line" grep -qF 'evil\x1b[2J\x0ax' "$O/hostile"
check "no raw escape byte reaches the terminal" [ "$(grep -c $'\033' "$O/hostile")" = 0 ]
check "a key whose ID is not hex is not listed" [ "$(grep -c 'not-hex' "$O/hostile")" = 0 ]

# --- usage ----------------------------------------------------------------------------------------
ctl u1 frobnicate
check "an unknown command exits 2" [ $? = 2 ]
ctl u2 sessions frob
check "an unknown sessions subcommand exits 2" [ $? = 2 ]
ctl u3 keys status --sni a.example
check "a filter on keys status exits 2" [ $? = 2 ]
ctl u4 stats --bogus
check "an unknown flag exits 2" [ $? = 2 ]
ctl u5 --help
check "--help exits 0 and lists the commands" grep -q '^  sessions revoke' "$O/u5"
ctl u6 stats --redis redis://127.0.0.1:1
check "stats with Redis unreachable exits 1" [ $? = 1 ]

# --- the Redis password: never on argv (ps shows it) --------------------------------------------------
redis-cli -p "$REDIS_PORT" acl setuser ctlro on '>ctl pass 9' '~*' +@read +@connection >/dev/null
ctl p1 stats --redis "redis://ctlro:ctl%20pass%209@127.0.0.1:$REDIS_PORT"
check "a password in --redis exits 2" [ $? = 2 ]
check "and the line names --redis-pass-file and TLSCACHE_REDIS_PASS, not the password" \
    [ "$(grep -c -- '--redis-pass-file FILE or TLSCACHE_REDIS_PASS' "$O/p1")/$(grep -c 'ctl pass' "$O/p1")/$(wc -l <"$O/p1")" = 1/0/1 ]
ctl p2 stats --redis-pass 'ctl pass 9'
check "--redis-pass is refused (exit 2) without echoing it" [ "$?/$(grep -c 'ctl pass' "$O/p2")" = 2/0 ]
(umask 077 && printf 'ctl pass 9\n' >"$TLSC_TMP/ctl.pass")
ctl p3 stats --redis "redis://ctlro@127.0.0.1:$REDIS_PORT" --redis-pass-file "$TLSC_TMP/ctl.pass" >/dev/null
check "--redis-pass-file authenticates an ACL user" [ "$?/$(awk '$1 == "(cluster)" { print $2 }' "$O/p3")" = 0/4 ]
TLSCACHE_REDIS_PASS='ctl pass 9' ctl p4 stats --redis "redis://ctlro@127.0.0.1:$REDIS_PORT" >/dev/null
check "TLSCACHE_REDIS_PASS authenticates an ACL user" [ $? = 0 ]
TLSCACHE_REDIS="redis://ctlro:ctl%20pass%209@127.0.0.1:$REDIS_PORT" ctl p5 sessions list >/dev/null
check "a password in TLSCACHE_REDIS (the nodes' environment) is taken" [ $? = 0 ]
ctl p6 stats --redis "redis://ctlro@127.0.0.1:$REDIS_PORT"
check "a user with no password anywhere exits 1, naming where to give it" [ "$?/$(grep -c -- '--redis-pass-file' "$O/p6")" = 1/1 ]
chmod 640 "$TLSC_TMP/ctl.pass"
ctl p7 stats --redis "redis://ctlro@127.0.0.1:$REDIS_PORT" --redis-pass-file "$TLSC_TMP/ctl.pass"
check "a password file others may read is refused (exit 1, chmod 600 named)" [ "$?/$(grep -c 'chmod 600' "$O/p7")" = 1/1 ]
ctl p8 stats --redis "rediss://127.0.0.1:$REDIS_PORT"
check "rediss:// without --redis-ca exits 1 naming it, on one line" [ "$?/$(grep -c -- '--redis-ca FILE' "$O/p8")/$(wc -l <"$O/p8")" = 1/1/1 ]

# --- rediss://: a Redis that speaks only TLS, client certificates required ---------------------
# Its certificate (default.pem) names localhost and 127.0.0.1, not 127.0.0.2.
P=$TLSC_TMP/pki
(
    cd "$P" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=tlscache-ctl -keyout client.key \
            -out client.csr 2>/dev/null &&
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out client.pem 2>/dev/null &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
            -keyout other-ca.key -out other-ca.pem 2>/dev/null
) || { echo "cannot make the client certificate" >&2; exit 1; }
TP=$(free_port)
mkdir -p "$TLSC_TMP/tlsredis"
redis-server --bind 127.0.0.1 127.0.0.2 --port 0 --tls-port "$TP" --tls-cert-file "$P/default.pem" \
    --tls-key-file "$P/default.key" --tls-ca-cert-file "$P/ca.pem" --tls-auth-clients yes --requirepass 'ctl pass 9' \
    --save '' --appendonly no --dir "$TLSC_TMP/tlsredis" --logfile "$TLSC_TMP/tlsredis/redis.log" --daemonize no &
track $!
wait_port "$TP" 10 || exit 1
TLSF=(--redis-ca "$P/ca.pem" --redis-cert "$P/client.pem" --redis-key "$P/client.key")
PT=$(free_port)
chmod 600 "$TLSC_TMP/ctl.pass"
REDIS_URL="rediss://127.0.0.1:$TP" start_node T "$PT" --resumption cache "${KEYD[@]}" "${TLSF[@]}" \
    --redis-pass-file "$TLSC_TMP/ctl.pass" || exit 1
sget "$PT" 1.2 t.example "" "$S.t" >/dev/null
sget "$PT" 1.2 t.example "" "$S.t2" >/dev/null
IDT=$(sid "$S.t2")
export TLSCACHE_REDIS_PASS='ctl pass 9'
tctl() { local name=$1; shift; ctl "$name" "$@" --redis "rediss://127.0.0.1:$TP" "${TLSF[@]}"; }
tls_listed() { tctl tl1 sessions list >/dev/null; grep -qE "^$IDT +[0-9]+ +TLSv1.2 +[A-Z0-9-]+ +t.example +- +T " "$O/tl1"; }
check "rediss://: sessions list over TLS shows the session node T stored" wait_for 10 "the TLS 1.2 session listed" tls_listed
check "rediss://: sessions show reads it" grep -qE '^sni +t\.example$' <(tctl tl2 sessions show "$IDT")
t_stats() { tctl tl3 stats >/dev/null; [ "$(awk '$1 == "T" { print $2 "/" $4 }' "$O/tl3")" = 2/2 ]; }
check "rediss://: stats sums node T's workers (2 full handshakes)" wait_for 5 "T's stats" t_stats
check "rediss://: revoke --sni deletes the node's sessions" [ "$(tctl tl4 sessions revoke --sni t.example)" = "2 sessions revoked" ]
check "rediss://: the revoked session gets a full handshake" [ "$(resumed "$PT" t.example "$S.t2")" = false ]
check "rediss://: the URL in TLSCACHE_REDIS and the files in TLSCACHE_REDIS_CA/CERT/KEY work too" \
    env TLSCACHE_REDIS="rediss://localhost:$TP" TLSCACHE_REDIS_CA="$P/ca.pem" TLSCACHE_REDIS_CERT="$P/client.pem" \
    TLSCACHE_REDIS_KEY="$P/client.key" "$CTL" sessions list
ctl tl5 stats --redis "rediss://127.0.0.1:$TP" --redis-ca "$P/other-ca.pem" --redis-cert "$P/client.pem" --redis-key "$P/client.key"
check "rediss:// with another CA exits 1 on one line naming --redis-ca" \
    [ "$?/$(grep -c "TLS handshake failed: Redis's certificate: .*--redis-ca" "$O/tl5")/$(wc -l <"$O/tl5")" = 1/1/1 ]
ctl tl6 stats --redis "rediss://127.0.0.2:$TP" "${TLSF[@]}"
check "rediss:// to a host the certificate does not name exits 1 on one line naming it" \
    [ "$?/$(grep -c "certificate does not name 127.0.0.2" "$O/tl6")/$(wc -l <"$O/tl6")" = 1/1/1 ]
ctl tl7 stats --redis "rediss://127.0.0.1:$TP" --redis-ca "$P/ca.pem"
check "rediss:// without the client certificate Redis requires exits 1" [ $? = 1 ]
ctl tl8 stats --redis "redis://127.0.0.1:$REDIS_PORT" --redis-ca "$P/ca.pem"
check "--redis-ca with a plain redis:// URL exits 1 on one line" [ "$?/$(grep -c 'does not use TLS' "$O/tl8")" = 1/1 ]
unset TLSCACHE_REDIS_PASS
check "no ctl output holds the Redis password" [ "$(grep -rc 'ctl pass' "$O" | awk -F: '{ s += $2 } END { print s + 0 }')" = 0 ]
finish
