#!/usr/bin/env bash
# OCSP stapling (--ocsp FILE, one per certificate, paired in order): responses come from
# `openssl ocsp` running as a local responder with a delegated signing certificate, plus a
# stale one made by the same responder code run three days in the past (faketime).
#   - a good response is stapled for its certificate, and only for it;
#   - a stale one is not stapled and the start warns, naming the certificate;
#   - a revoked one, or one about another certificate, refuses the start (exit 1) with one
#     line naming the certificate and the reason, and --check reports the same;
#   - --check prints what each response came to;
#   - SIGHUP with a new file staples the new response; a bad new file refuses the reload and
#     the current response stays stapled;
#   - --ocsp-fetch: the master fetches a missing response from the certificate's AIA responder,
#     writes the file and replaces the workers, which staple it; an unreachable responder is
#     logged and costs nothing else.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need openssl python3 redis-server faketime timeout
trap cleanup EXIT
tlsc_tmpdir
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^TLSCACHE_(CERT|KEY|OCSP|PFX)')

P=$TLSC_TMP/pki
make_test_pki "$P" || exit 1

# A delegated responder certificate (OCSP signing), and the responder's database: a and b
# valid, wild revoked (keyCompromise). f and g name a responder in their AIA: f ours, g a port
# where nothing listens.
OCSP_PORT=$(free_port)
DEAD_PORT=$(free_port)
aia_leaf() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$1.example" -out "$1.csr"
    printf 'subjectAltName=DNS:%s.example\nextendedKeyUsage=serverAuth\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:%s/\n' \
        "$1" "$2" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256 -extfile "$1.ext" -out "$1.leaf"
    cat "$1.leaf" ca.pem >"$1.pem"
}
make_responder() {
    set -e
    cd "$P"
    aia_leaf f "$OCSP_PORT"
    aia_leaf g "$DEAD_PORT"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ocsp.key
    openssl req -new -key ocsp.key -subj "/CN=tlscache test OCSP responder" -out ocsp.csr
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=OCSPSigning\n' >ocsp.ext
    openssl x509 -req -in ocsp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256 -extfile ocsp.ext -out ocsp.pem
    row() { printf '%s\t301231235959Z\t%s\t%s\tunknown\t/CN=%s\n' "$1" "$3" "$(openssl x509 -in "$2.pem" -noout -serial | cut -d= -f2)" "$2"; }
    { row V a "" && row V b "" && row R wild "261101000000Z,keyCompromise" && row V f ""; } >index.txt
}
out=$( (make_responder) 2>&1) || { echo "$out" >&2; exit 1; }

# The responder serves one connection at a time: it is polled with real requests (a bare
# TCP probe would hold it), and -timeout bounds how long a silent client can hold it.
openssl ocsp -index "$P/index.txt" -port "$OCSP_PORT" -rsigner "$P/ocsp.pem" -rkey "$P/ocsp.key" -CA "$P/ca.pem" \
    -ndays 1 -timeout 2 >"$TLSC_TMP/responder.log" 2>&1 &
track $!

# fetch NAME STATUS: asks the responder about NAME.pem, keeps the DER as NAME-STATUS.der.
fetch() {
    timeout 10 openssl ocsp -issuer "$P/ca.pem" -cert "$P/$1.pem" -url "http://127.0.0.1:$OCSP_PORT" \
        -CAfile "$P/ca.pem" -respout "$P/$1-$2.der" 2>&1 | grep "^$P/$1.pem: "
    [ -s "$P/$1-$2.der" ] && openssl ocsp -respin "$P/$1-$2.der" -noverify -text 2>/dev/null | grep -q "Cert Status: $2"
}
check "the responder says a is good" wait_for 15 "the OCSP responder" fetch a good
check "the responder says b is good" fetch b good
check "the responder says wild is revoked" fetch wild revoked
# Stale: the same responder code, three days ago, with one day of validity.
stale_a() {
    openssl ocsp -issuer "$P/ca.pem" -cert "$P/a.pem" -reqout "$P/a-req.der" -no_nonce >/dev/null 2>&1 &&
        faketime '-3 days' openssl ocsp -index "$P/index.txt" -rsigner "$P/ocsp.pem" -rkey "$P/ocsp.key" -CA "$P/ca.pem" \
            -reqin "$P/a-req.der" -respout "$P/a-stale.der" -ndays 1 >/dev/null 2>&1 &&
        openssl ocsp -respin "$P/a-stale.der" -noverify -text 2>/dev/null | grep -q "Next Update: .* $(date -u -d '-2 days' +%Y)"
}
check "a stale response for a (nextUpdate two days ago) was made" stale_a

SERVER=$TLSC_BIN/server/tlscache-server
start_redis || exit 1

# status PORT SNI: what s_client -status reports about the stapled response ("none" or "good").
status() {
    local out
    out=$(timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$2" -status </dev/null 2>/dev/null)
    if grep -q "OCSP response: no response sent" <<<"$out"; then
        echo none
    elif grep -q "OCSP Response Status: successful" <<<"$out" && grep -q "Cert Status: good" <<<"$out"; then
        echo good
    else
        echo "unexpected: $(grep -m1 -i ocsp <<<"$out")"
    fi
}
status_is() {
    local s
    s=$(status "$1" "$2")
    echo "$2: $s"
    [ "$s" = "$3" ]
}

# --------------------------------------------------------------- start: one good, one stale
# start_node serves default, a, b in that order: --ocsp none / a's / b's.
cp "$P/a-stale.der" "$TLSC_TMP/a-current.der"
cp "$P/b-good.der" "$TLSC_TMP/b-current.der"
PORT=$(free_port)
start_node n1 "$PORT" --ocsp none --ocsp "$TLSC_TMP/a-current.der" --ocsp "$TLSC_TMP/b-current.der" || exit 1
LOG=$TLSC_TMP/n1.log
check "good response for b is stapled (Cert Status: good)" status_is "$PORT" b.example good
check "stale response for a is not stapled" status_is "$PORT" a.example none
check "certificate without --ocsp staples nothing" status_is "$PORT" localhost none
check "start warns that a's response is stale, naming it" \
    log_has "$LOG" "warn: --ocsp: \"$TLSC_TMP/a-current.der\" for certificate 2 \(/CN=a.example\) is not stapled: nextUpdate .* has passed"

# --------------------------------------------------------------- SIGHUP
reloads() { grep -c "SIGHUP: certificates reloaded" "$LOG"; }
cp "$P/a-good.der" "$TLSC_TMP/a-current.der"
kill -HUP "$NODE_PID_n1"
check "SIGHUP: the reload reports a's response as good and stapled" \
    wait_for 20 "the reload" log_has "$LOG" "SIGHUP: certificate 2: /CN=a.example.*OCSP good, valid until .*, stapled"
check "SIGHUP: the new response for a is stapled" wait_for 20 "a stapled" status_is "$PORT" a.example good

cp "$P/wild-revoked.der" "$TLSC_TMP/b-current.der"
kill -HUP "$NODE_PID_n1"
check "SIGHUP with a response about another certificate: the reload is refused and says why" \
    wait_for 20 "the refusal" log_has "$LOG" \
    "SIGHUP: reload refused, keeping the current certificates: --ocsp: \"$TLSC_TMP/b-current.der\" for certificate 3 \(/CN=b.example\) is refused: the response is about another certificate"
check "after the refused reload b's response is still stapled" status_is "$PORT" b.example good
check "only the first SIGHUP replaced the workers" [ "$(reloads)" = 1 ]
check "the master is still running" kill -0 "$NODE_PID_n1"

# --------------------------------------------------------------- refused at start and by --check
# refused NAME EXPECT ARGS...: the start exits 1 with one stderr line containing EXPECT.
refused() {
    local name=$1 expect=$2 rc lines port
    shift 2
    port=$(free_port)
    timeout -k 2 20 "$SERVER" --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$REDIS_PORT" "$@" \
        >"$TLSC_TMP/$name.out" 2>"$TLSC_TMP/$name.err" </dev/null
    rc=$?
    lines=$(wc -l <"$TLSC_TMP/$name.err")
    echo "exit $rc, $lines line(s): $(head -3 "$TLSC_TMP/$name.err")"
    [ "$rc" = 1 ] && [ "$lines" = 1 ] && grep -qF -- "$expect" "$TLSC_TMP/$name.err"
}
WILD=(--cert "$P/wild.pem" --key "$P/wild.key")
A=(--cert "$P/a.pem" --key "$P/a.key")
check "a revoked response refuses the start, naming the certificate and the reason" \
    refused revoked "--ocsp: \"$P/wild-revoked.der\" for certificate 1 (/CN=*.w.example) is refused: the certificate is REVOKED since 2026-11-01 00:00:00 UTC, reason keyCompromise" \
    "${WILD[@]}" --ocsp "$P/wild-revoked.der"
check "--check reports the revoked response (exit 1)" \
    refused check-revoked "reason keyCompromise" "${WILD[@]}" --ocsp "$P/wild-revoked.der" --check
check "a response about another certificate refuses the start" \
    refused other "for certificate 1 (/CN=a.example) is refused: the response is about another certificate" \
    "${A[@]}" --ocsp "$P/b-good.der"
check "a file that is not an OCSP response refuses the start" \
    refused garbage "is refused: not a DER OCSP response" "${A[@]}" --ocsp "$P/a.pem"
check "more --ocsp than certificates is a usage error naming the rule" \
    bash -c '"$@" >/dev/null 2>"$0"; [ $? = 2 ] && grep -q "^tlscache-server: --ocsp: 2 given for 1 certificate(s)" "$0"' \
    "$TLSC_TMP/extra.err" "$SERVER" "${A[@]}" --ocsp none --ocsp "$P/a-good.der" --check

check "--ocsp-fetch without any --ocsp FILE is a usage error" \
    bash -c '"$@" >/dev/null 2>"$0"; [ $? = 2 ] && grep -q "^tlscache-server: --ocsp-fetch: needs an --ocsp FILE" "$0"' \
    "$TLSC_TMP/fetch.err" "$SERVER" "${A[@]}" --ocsp-fetch --check
check "--check prints a good response as stapled" \
    bash -c 'out=$("$@" --check 2>&1) && grep -q "^certificate  1: /CN=a.example.*; OCSP good, valid until .*, stapled$" <<<"$out"' \
    _ "$SERVER" "${A[@]}" --ocsp "$P/a-good.der"
check "--check prints a stale response as not stapled (exit 0)" \
    bash -c 'out=$("$@" --check 2>/dev/null) && grep -q "^certificate  1: /CN=a.example.*; OCSP stale, NOT stapled: nextUpdate .* has passed" <<<"$out"' \
    _ "$SERVER" "${A[@]}" --ocsp "$P/a-stale.der"
check "--ocsp none leaves a certificate out and pairs the next one" \
    bash -c 'out=$("$@" --check 2>&1) && grep -q "^certificate  2: /CN=a.example.*OCSP good" <<<"$out"' \
    _ "$SERVER" "${WILD[@]}" "${A[@]}" --ocsp none --ocsp "$P/a-good.der"

# --------------------------------------------------------------- --ocsp-fetch
# start_node serves default, a, b; f (fetched, its file missing) and g (responder down) follow.
PORT2=$(free_port)
start_node n2 "$PORT2" --cert "$P/f.pem" --key "$P/f.key" --cert "$P/g.pem" --key "$P/g.key" \
    --ocsp none --ocsp none --ocsp none --ocsp "$TLSC_TMP/f.der" --ocsp "$TLSC_TMP/g.der" --ocsp-fetch || exit 1
LOG2=$TLSC_TMP/n2.log
check "--ocsp-fetch: a missing file is a warning at start" \
    log_has "$LOG2" "warn: --ocsp: \"$TLSC_TMP/f.der\" for certificate 4 does not exist yet; --ocsp-fetch will fetch it"
check "--ocsp-fetch: the master fetches f's response from its AIA responder and writes it" \
    wait_for 30 "the fetch" log_has "$LOG2" \
    "ocsp-fetch: certificate 4: fetched from http://127.0.0.1:$OCSP_PORT/: good, valid until .*; written to \"$TLSC_TMP/f.der\""
check "--ocsp-fetch: the workers are replaced with the response stapled" \
    wait_for 30 "the reload" log_has "$LOG2" "ocsp-fetch: certificate 4: /CN=f.example.*OCSP good, valid until .*, stapled"
check "--ocsp-fetch: f's fetched response is stapled" wait_for 20 "f stapled" status_is "$PORT2" f.example good
check "--ocsp-fetch: the written file is the responder's good answer for f" \
    bash -c 'openssl ocsp -respin "$0" -issuer "$1" -cert "$2" -CAfile "$3" 2>&1 | grep -q ": good$"' \
    "$TLSC_TMP/f.der" "$P/ca.pem" "$P/f.pem" "$P/ca.pem"
check "--ocsp-fetch: an unreachable responder is an error line naming the certificate and the URL" \
    wait_for 30 "the failed fetch" log_has "$LOG2" \
    "error: ocsp-fetch: certificate 5: POST http://127.0.0.1:$DEAD_PORT/ failed or timed out .*; next try in 60 s"
check "--ocsp-fetch: no fetch is made from a worker (every fetch line is the master's)" \
    bash -c '! grep "ocsp-fetch: certificate" "$0" | grep -q "/w[0-9]"' "$LOG2"
check "--ocsp-fetch: the server is still running" kill -0 "$NODE_PID_n2"

finish
