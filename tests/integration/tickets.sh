#!/usr/bin/env bash
# Tickets and sealed records with tlscache-daemon: a ticket made on node A resumes on node B
# (TLS 1.2 and 1.3, openssl s_client and Node.js); with rotation shortened to seconds a ticket
# under the previous key resumes and is renewed, one older than the window does not; the
# daemon SIGKILLed and restarted invalidates no ticket; a node started while the daemon is down
# serves full handshakes and cache resumption, then tickets; sealed records flipped or moved are
# misses; no key, derived key or master secret ever appears in Redis, a dump, or a log.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server redis-cli openssl jq node python3
# Daemons and workers are SIGKILLed and restarted here while handshakes go on: generous lookup
# and store timeouts keep the cache fallbacks about the faults, not about a sanitizer build.
export GENEROUS_TIMEOUTS=1
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
PROBE=$TLSC_BIN/cache-daemon/tlscache-keyd-probe
SECRET=$TLSC_TMP/cluster.secret
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET"
chmod 600 "$SECRET" # secret files others can read are refused
S=$TLSC_TMP/sess

# start_daemon NAME PORT [flags]: sets DPID_<NAME>
start_daemon() {
    local name=$1 port=$2
    shift 2
    "$DAEMON" --listen "127.0.0.1:$port" --secret-file "$SECRET" --node "$name" --grace-ms 500 "$@" \
        >>"$TLSC_TMP/daemon-$name.log" 2>&1 &
    track $!
    printf -v "DPID_$name" '%s' $!
    wait_port "$port" 10
}
has_ticket() { openssl sess_id -in "$1" -noout -text 2>/dev/null | grep -q 'TLS session ticket:'; }
# issues_ticket PORT VER: a fresh handshake with the node gets a ticket (it has keys).
issues_ticket() {
    local r
    rm -f "$S.probe"
    r=$(sget "$1" "$2" a.example "" "$S.probe")
    echo "reply: ${r:-none}; ticket: $(has_ticket "$S.probe" && echo yes || echo no)"
    has_ticket "$S.probe"
}
# wait_ticket PORT VER: waits (bounded, 10 s) until the node hands out tickets.
wait_ticket() { wait_for 10 "node on port $1 to issue a TLS $2 ticket" issues_ticket "$1" "$2"; }
# ticket_key_tag SESSFILE: the daemon's tag (first 4 bytes of SHA-256 of the key name, as
# tlscache-keyd-probe prints them) of the key that sealed the session's ticket: a ticket
# starts with the 16-byte name of its key.
ticket_key_tag() {
    local hex
    hex=$(openssl sess_id -in "$1" -noout -text 2>/dev/null |
        awk '/TLS session ticket:/ { getline; gsub(/-/, " "); for (i = 2; i <= 17; i++) printf "%s", $i; exit }')
    [ ${#hex} = 32 ] || { echo "no ticket in $1"; return 1; }
    python3 -c 'import hashlib, sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest()[:8])' "$hex"
}
# daemon_window PORT: the tags of the keys the daemon on PORT holds ("keys= a b c").
daemon_window() { "$PROBE" --connect "127.0.0.1:$1" --secret-file "$SECRET" --once | sed -n 's/.* keys=/keys=/p' | tail -1; }
# key_in_window PORT TAG / key_gone PORT TAG: the daemon's window holds / no longer holds TAG.
key_in_window() { local w; w=$(daemon_window "$1"); echo "$w"; [[ " $w " == *" $2 "* ]]; }
key_gone() { local w; w=$(daemon_window "$1"); echo "$w"; [ -n "$w" ] && [[ " $w " != *" $2 "* ]]; }
# issues_under_other_key PORT TAG: the node's new tickets are sealed by a key other than TAG.
issues_under_other_key() {
    local t
    rm -f "$S.k"
    sget "$1" 1.2 a.example "" "$S.k" >/dev/null
    t=$(ticket_key_tag "$S.k")
    echo "new tickets under key ${t:-none} (waiting for one other than $2)"
    [ -n "$t" ] && [ "$t" != "$2" ]
}
KD=$(free_port)
start_daemon D "$KD" || exit 1
KEYD=(--keyd "127.0.0.1:$KD" --keyd-secret-file "$SECRET")
PA=$(free_port)
PB=$(free_port)
PC=$(free_port)
start_node A "$PA" --resumption tickets "${KEYD[@]}" || exit 1
start_node B "$PB" --resumption tickets "${KEYD[@]}" || exit 1
# C checks what a worker makes of the records in Redis (tampered, moved, planted): no local cache
# in front of Redis, which would still hold the genuine session.
start_node C "$PC" --resumption cache --local-cache 0 "${KEYD[@]}" || exit 1
check "node A gets ticket keys from the daemon" wait_ticket "$PA" 1.2
check "node B gets ticket keys from the daemon" wait_ticket "$PB" 1.3

# --- a ticket made on A resumes on B -----------------------------------------------------------
for v in 1.2 1.3; do
    sget "$PA" "$v" a.example "" "$S.t$v" >/dev/null
    check "tls$v: node A issued a ticket" has_ticket "$S.t$v"
    r=$(sget "$PB" "$v" a.example "$S.t$v" "")
    check "tls$v: ticket made on node A resumes on node B" [ "$(jfield "$r" resumed)/$(jfield "$r" node)" = "true/B" ]
    n1=$(node "$TLSC_ROOT/tests/lib/node_client.js" --port "$PA" --sni a.example --tls "$v" --session-out "$S.n$v")
    n2=$(node "$TLSC_ROOT/tests/lib/node_client.js" --port "$PB" --sni a.example --tls "$v" --session-in "$S.n$v")
    check "node tls$v: ticket from A resumes on B (isSessionReused)" [ "$(jfield "$n2" reused)/$(jfield "$n2" body.node)" = "true/B" ]
done
sget "$PA" 1.3 a.example "" "$S.fresh" >/dev/null
trace=$(printf 'GET / HTTP/1.1\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PB" -tls1_3 -servername a.example \
    -sess_in "$S.fresh" -ign_eof -msg 2>&1)
check "tls1.3: a resumed client gets a fresh ticket (NewSessionTicket after resumption)" \
    bash -c 'grep -q "\"resumed\":true" <<<"$1" && grep -q NewSessionTicket <<<"$1"' _ "$trace"
r=$(sget "$PB" 1.2 b.example "$S.t1.2" "")
check "a ticket made for a.example is not resumed for b.example" [ "$(jfield "$r" resumed)" = false ]
check "stats count decrypted tickets" wait_for 5 "tickets_decrypted >= 4" redis_stat_ge tickets_decrypted 4
node_stat() { # node_stat NODE FIELD: sum over the node's workers
    local t=0 k
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern "tlscache:stats:$1:*"); do t=$((t + $(redis-cli -p "$REDIS_PORT" hget "$k" "$2"))); done
    echo $t
}
check "sessions that travel in stateless tickets are not written to Redis (stores on A+B: 0)" \
    [ "$(($(node_stat A stores_ok) + $(node_stat B stores_ok)))" = 0 ]

# --- sealed records (node C: cache mode with daemon keys) ------------------------------------------
sget "$PC" 1.2 a.example "" "$S.c" >/dev/null
id=$(openssl sess_id -in "$S.c" -noout -text | awk '/Session-ID:/{print tolower($2)}')
der=$(python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" --hex HGET "tlscache:sess:$id" der | tr -d '"')
check "session record in Redis is sealed (starts with 'S' v1)" [ "${der:0:4}" = 5301 ]
check "metadata stays readable next to the sealed record" [ "$(redis-cli -p "$REDIS_PORT" hget "tlscache:sess:$id" sni)" = a.example ]
r=$(sget "$PC" 1.2 a.example "$S.c" "")
check "sealed record resumes" [ "$(jfield "$r" resumed)" = true ]
flip=$(python3 -c "import sys; h=sys.argv[1]; i=len(h)//2; print(h[:i] + format(int(h[i:i+2],16)^1,'02x') + h[i+2:])" "$der")
python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" HSET "tlscache:sess:$id" der "hex:$flip" >/dev/null
r=$(sget "$PC" 1.2 a.example "$S.c" "")
check "sealed record with one bit flipped is a miss" [ "$(jfield "$r" resumed)" = false ]
sget "$PC" 1.2 a.example "" "$S.c2" >/dev/null
id2=$(openssl sess_id -in "$S.c2" -noout -text | awk '/Session-ID:/{print tolower($2)}')
python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" HSET "tlscache:sess:$id2" der "hex:$der" >/dev/null
r=$(sget "$PC" 1.2 a.example "$S.c2" "")
check "sealed record moved to another key is a miss" [ "$(jfield "$r" resumed)" = false ]
sget "$PC" 1.2 a.example "" "$S.c3" >/dev/null
id3=$(openssl sess_id -in "$S.c3" -noout -text | awk '/Session-ID:/{print tolower($2)}')
plain=$(openssl sess_id -in "$S.c3" -outform DER | od -An -tx1 | tr -d ' \n')
python3 "$TLSC_ROOT/tests/lib/resp.py" "$REDIS_PORT" HSET "tlscache:sess:$id3" der "hex:50$plain" >/dev/null
r=$(sget "$PC" 1.2 a.example "$S.c3" "")
check "a plain record planted while sealing is on is refused" [ "$(jfield "$r" resumed)" = false ]

# --- the daemon SIGKILLed and restarted -------------------------------------------------------------
sget "$PA" 1.3 a.example "" "$S.before" >/dev/null
kill -KILL "$DPID_D"
wait "$DPID_D" 2>/dev/null
start_daemon D "$KD" || exit 1
# Workers reconnect (with backoff) and report their keys within the daemon's grace period.
check "daemon restarted: it adopted the workers' keys" \
    wait_for 10 "the restarted daemon to adopt keys" log_has "$TLSC_TMP/daemon-D.log" "adopted [0-9]+ keys"
r=$(sget "$PB" 1.3 a.example "$S.before" "")
check "daemon restarted: a ticket made before still resumes" [ "$(jfield "$r" resumed)" = true ]
sget "$PA" 1.2 a.example "" "$S.after" >/dev/null
r=$(sget "$PB" 1.2 a.example "$S.after" "")
check "daemon restarted: a new ticket from A resumes on B" [ "$(jfield "$r" resumed)" = true ]

# --- workers respawned while the daemon is away start with the master's keys ----------------------
kill -KILL "$DPID_D"
wait "$DPID_D" 2>/dev/null
old_workers=$(worker_pids "$NODE_PID_A" | tr '\n' ' ')
for p in $old_workers; do kill -KILL "$p"; done
# respawned_a: node A has 2 workers again, none of the old ones.
respawned_a() {
    local now
    now=$(worker_pids "$NODE_PID_A" | tr '\n' ' ')
    echo "workers: ${now:-none} (old: $old_workers)"
    [ "$(worker_pids "$NODE_PID_A" | grep -cvxF -f <(tr ' ' '\n' <<<"$old_workers" | grep .))" = 2 ]
}
check "workers SIGKILLed while the daemon is down are respawned" wait_for 10 "node A's workers respawned" respawned_a
sget "$PB" 1.2 a.example "" "$S.resp" >/dev/null
r=$(sget "$PA" 1.2 a.example "$S.resp" "$S.resp2")
check "daemon down, workers respawned: they hold the master's keys and open tickets" [ "$(jfield "$r" resumed)" = true ]
sget "$PA" 1.3 a.example "" "$S.resp3" >/dev/null
check "daemon down, workers respawned: they still issue tickets" has_ticket "$S.resp3"
start_daemon D "$KD" || exit 1

# --- a node started while its daemon is down --------------------------------------------------------
KD2=$(free_port)
PG=$(free_port)
start_node G "$PG" --resumption both --keyd "127.0.0.1:$KD2" --keyd-secret-file "$SECRET" || exit 1
sget "$PG" 1.2 a.example "" "$S.g" >/dev/null
check "daemon down: no ticket is issued" bash -c "! openssl sess_id -in '$S.g' -noout -text | grep -q 'TLS session ticket:'"
r=$(sget "$PG" 1.2 a.example "$S.g" "")
check "daemon down: TLS 1.2 cache resumption works" [ "$(jfield "$r" resumed)" = true ]
sget "$PG" 1.3 a.example "" "$S.g3" >/dev/null
r=$(sget "$PG" 1.3 a.example "$S.g3" "")
check "daemon down: TLS 1.3 falls back to stateful tickets through Redis" [ "$(jfield "$r" resumed)" = true ]
start_daemon E "$KD2" || exit 1
check "daemon up: the node now issues tickets" wait_ticket "$PG" 1.2

# --- rotation shortened to seconds -------------------------------------------------------------------
KD3=$(free_port)
start_daemon R "$KD3" --rotate 4 --ticket-lifetime 20 --lead 1 || exit 1
PE=$(free_port)
PF=$(free_port)
start_node E "$PE" --resumption tickets --keyd "127.0.0.1:$KD3" --keyd-secret-file "$SECRET" || exit 1
start_node F "$PF" --resumption tickets --keyd "127.0.0.1:$KD3" --keyd-secret-file "$SECRET" || exit 1
wait_ticket "$PE" 1.2 && wait_ticket "$PF" 1.2
sget "$PE" 1.2 a.example "" "$S.old" >/dev/null
sget "$PE" 1.2 a.example "" "$S.ancient" >/dev/null
old_tag=$(ticket_key_tag "$S.old")
ancient_tag=$(ticket_key_tag "$S.ancient")
# (this makes key_gone below mean something: the tags are the daemon's names for the keys)
check "rotation: the daemon's window holds the key of the new tickets ($old_tag)" key_in_window "$KD3" "$old_tag"
# The key rotates out of "current" after 4 s and stays "previous" 20 s more (slack for a loaded
# box, where the steps below took 20 s once): wait until node F
# seals new tickets with another key, then offer it the old one.
check "rotation: node F moves on to a new current key" \
    wait_for 10 "node F to seal tickets with a key other than $old_tag" issues_under_other_key "$PF" "$old_tag"
trace=$(printf 'GET / HTTP/1.1\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PF" -tls1_2 -servername a.example \
    -sess_in "$S.old" -ign_eof -msg 2>&1)
if ! grep -q '"resumed":true' <<<"$trace"; then # what was offered, and what the daemon holds now
    echo "# offered key $old_tag; daemon R: $(daemon_window "$KD3")"
    grep -a 'Reused\|New,\|^{' <<<"$trace" | sed 's/^/# /'
fi
check "rotation: a ticket under the previous key resumes on another node" grep -q '"resumed":true' <<<"$trace"
check "rotation: ... and the server sent a fresh ticket (NewSessionTicket on the wire)" grep -q 'NewSessionTicket' <<<"$trace"
check "rotation: renewals are counted" wait_for 5 "tickets_renewed >= 1" redis_stat_ge tickets_renewed 1
# Past not_after of the key that made it: the daemon's window has dropped it (workers drop a
# key at its not_after on their own clock, the same instant).
check "rotation: the key of the ancient ticket leaves the daemon's window" \
    wait_for 45 "key $ancient_tag to leave daemon R's window" key_gone "$KD3" "$ancient_tag"
r=$(sget "$PF" 1.2 a.example "$S.ancient" "")
check "rotation: a ticket older than the window gets a full handshake" [ "$(jfield "$r" resumed)" = false ]

# --- no key, derived key or master secret anywhere it must not be -------------------------------------
secrets=$("$PROBE" --connect "127.0.0.1:$KD" --secret-file "$SECRET" --once --print-secrets | awk '/^secret /{sub("name=","",$2); sub("secret=","",$3); print "key", $2, $3}')
secrets+=$'\n'$("$PROBE" --connect "127.0.0.1:$KD3" --secret-file "$SECRET" --once --print-secrets | awk '/^secret /{sub("name=","",$2); sub("secret=","",$3); print "key", $2, $3}')
check "the probe fetched the daemons' keys to look for" [ "$(grep -c '^key' <<<"$secrets")" -ge 4 ]
redis-cli -p "$REDIS_PORT" save >/dev/null
check "no ticket key or derived key in Redis, its dump, or any log or file the processes wrote" \
    python3 "$TLSC_ROOT/tests/lib/scan_secrets.py" "$REDIS_PORT" "$TLSC_TMP" <<<"$secrets"
sget "$PC" 1.2 a.example "" "$S.c4" >/dev/null
sget "$PC" 1.3 a.example "" "$S.c5" >/dev/null
masters=""
for f in "$S".c4 "$S".c5 "$S".g "$S".g3 "$S".after "$S".t1.2; do
    m=$(openssl sess_id -in "$f" -noout -text | awk '/Master-Key:|Resumption PSK:/{print $NF}')
    [ -n "$m" ] && masters+="raw $m"$'\n'
done
check "found the master secrets of 6 sessions to look for" [ "$(grep -c '^raw' <<<"$masters")" = 6 ]
check "no session master secret in Redis or its dump" \
    python3 "$TLSC_ROOT/tests/lib/scan_secrets.py" "$REDIS_PORT" "$TLSC_TMP/redis-$REDIS_PORT" <<<"$masters"

finish
