#!/usr/bin/env bash
# Bad input at start-up: a missing, unreadable or garbage certificate, a key that does not match
# its certificate, a wrong PFX passphrase, a malformed dhparam file, a bad Redis URL and bad flag
# values each make tlscache-server exit non-zero at once with exactly one line on stderr naming
# the flag and the file or value, without echoing a secret, and with nothing left listening.
# The exit code follows the one convention of every binary (common/opts.h): 2 for bad usage
# (the command line or a variable is wrong), 1 for what start-up finds (files, keys, OpenSSL).
# Secret files that group or others can read are refused with the chmod to run, and the
# daemon and the bench use the same exit codes.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
need openssl python3 redis-server
trap cleanup EXIT
tlsc_tmpdir

SERVER=$TLSC_BIN/server/tlscache-server
DAEMON=$TLSC_BIN/cache-daemon/tlscache-daemon
BENCH=$TLSC_BIN/bench/tlscache-bench
BIN=$SERVER # the binary bad() runs
WANT=1      # the exit code bad() expects
if [ ! -x "$SERVER" ]; then
    echo "not ok - $SERVER is not built" >&2
    exit 1
fi
# The caller's TLSCACHE_* variables would change what is being tested.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^TLSCACHE_')
# ... except the sealing secret every server needs with the cache (tlsc_tmpdir made it, 0600).
export TLSCACHE_SEAL_SECRET_FILE=$TLSC_TMP/seal.secret

P=$TLSC_TMP/pki
make_test_pki "$P" || exit 1
GOOD=(--cert "$P/a.pem" --key "$P/a.key")

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# bad NAME [ENV=VALUE ...] -- ARGS... ++ EXPECT...: runs $BIN with ARGS (and the env
# assignments), expects a prompt exit with code $WANT and one stderr line that contains every EXPECT
# string and none of the "!STRING" ones, and nothing listening on its port afterwards.
bad() {
    local name=$1 port rc lines why="" s
    local envs=() args=() expects=()
    shift
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    while [ "$1" != "++" ]; do args+=("$1"); shift; done
    shift
    expects=("$@")
    port=$(free_port)
    timeout -k 2 15 env "${envs[@]}" "$BIN" --listen "127.0.0.1:$port" "${args[@]}" \
        >"$TLSC_TMP/out" 2>"$TLSC_TMP/err" </dev/null
    rc=$?
    lines=$(wc -l <"$TLSC_TMP/err")
    if [ "$rc" -eq 124 ] || [ "$rc" -ge 128 ]; then
        why="did not exit promptly or crashed (exit $rc)"
    elif [ "$rc" -ne "$WANT" ]; then
        why="exit code $rc, want $WANT"
    elif [ "$lines" -ne 1 ]; then
        why="$lines lines on stderr, want 1"
    fi
    for s in "${expects[@]}"; do
        if [ "${s:0:1}" = "!" ]; then
            grep -qF -- "${s:1}" "$TLSC_TMP/err" && why="${why:+$why; }stderr shows \"${s:1}\""
        else
            grep -qF -- "$s" "$TLSC_TMP/err" || why="${why:+$why; }stderr lacks \"$s\""
        fi
    done
    if listening "$port"; then
        why="${why:+$why; }port $port is listening"
    fi
    if command -v pgrep >/dev/null && pgrep -f -- "127.0.0.1:$port" >/dev/null; then
        why="${why:+$why; }a process for port $port is still running"
    fi
    if [ -z "$why" ]; then
        pass "$name: $(cat "$TLSC_TMP/err")"
    else
        fail "$name: $why"
        sed 's/^/    stderr: /' "$TLSC_TMP/err" | head -20
    fi
}

# ---------------------------------------------------------------- certificate files (exit 1)

WANT=1

bad missing_cert_names_flag_and_file -- --cert "$P/nope.pem" --key "$P/a.key" \
    ++ "--cert" "$P/nope.pem" "No such file"
bad missing_key_names_flag_and_file -- --cert "$P/a.pem" --key "$P/nope.key" \
    ++ "--key" "$P/nope.key" "No such file"
bad directory_as_cert_is_unreadable -- --cert "$P" --key "$P/a.key" \
    ++ "--cert" "\"$P\"" "not a regular file"
if [ "$(id -u)" -ne 0 ]; then
    cp "$P/a.pem" "$P/noperm.pem" && chmod 000 "$P/noperm.pem"
    bad unreadable_cert_names_flag_and_file -- --cert "$P/noperm.pem" --key "$P/a.key" \
        ++ "--cert" "$P/noperm.pem" "Permission denied"
else
    # root reads a mode-000 file, so the case above (a directory) stands for "unreadable".
    echo "# running as root: mode 000 does not stop root, unreadable is tested with a directory"
fi
bad garbage_cert_names_flag_and_file -- --cert "$P/garbage.pem" --key "$P/a.key" \
    ++ "--cert" "$P/garbage.pem" "not a PEM certificate"
bad key_mismatch_names_both_files -- --cert "$P/a.pem" --key "$P/mismatch.key" \
    ++ "--key" "$P/mismatch.key" "$P/a.pem" "does not match"
bad key_of_other_type_mismatch -- --cert "$P/a.pem" --key "$P/b.key" \
    ++ "--key" "$P/b.key" "does not match"
bad second_pair_mismatch_is_caught -- "${GOOD[@]}" --cert "$P/b.pem" --key "$P/wild.key" \
    ++ "--key" "$P/wild.key" "$P/b.pem"
WANT=2
bad cert_without_key -- --cert "$P/a.pem" \
    ++ "--cert" "$P/a.pem" "no matching --key"
bad no_certificate_at_all -- \
    ++ "--cert/--key or --pfx"
WANT=1

# ---------------------------------------------------------------- PKCS#12

bad wrong_pfx_passphrase_from_file -- --pfx "$P/p12.pfx" --pfx-pass-file "$P/wrong.pass" \
    ++ "--pfx" "$P/p12.pfx" "wrong passphrase" "!not the passphrase"
bad wrong_pfx_passphrase_from_env TLSCACHE_PFX_PASS=letmein -- --pfx "$P/p12.pfx" \
    ++ "--pfx" "$P/p12.pfx" "wrong passphrase" "TLSCACHE_PFX_PASS" "!letmein"
bad pfx_without_passphrase -- --pfx "$P/p12.pfx" \
    ++ "--pfx" "$P/p12.pfx" "needs a passphrase"
bad missing_pfx_pass_file -- --pfx "$P/p12.pfx" --pfx-pass-file "$P/nope.pass" \
    ++ "--pfx-pass-file" "$P/nope.pass"
bad pem_given_as_pfx -- --pfx "$P/a.pem" --pfx-pass-file "$P/p12.pass" \
    ++ "--pfx" "$P/a.pem" "not a PKCS#12"
WANT=2
bad passphrase_on_command_line_refused -- "${GOOD[@]}" --pfx-pass hunter2 \
    ++ "--pfx-pass" "not accepted on the command line" "!hunter2"
WANT=1

# ---------------------------------------------------------------- DH parameters, ciphers, groups

bad malformed_dhparam_names_flag_and_file -- "${GOOD[@]}" --dhparam "$P/bad-dhparam.pem" \
    ++ "--dhparam" "$P/bad-dhparam.pem"
bad ec_params_as_dhparam -- "${GOOD[@]}" --dhparam "$P/notdh.pem" \
    ++ "--dhparam" "$P/notdh.pem" "not DH"
bad missing_dhparam -- "${GOOD[@]}" --dhparam "$P/nope-dh.pem" \
    ++ "--dhparam" "$P/nope-dh.pem" "No such file"
bad unknown_group -- "${GOOD[@]}" --groups "X25519:nosuchgroup" \
    ++ "--groups" "unknown group" "nosuchgroup"
bad unknown_ciphers -- "${GOOD[@]}" --ciphers "NOSUCHCIPHER" \
    ++ "--ciphers" "NOSUCHCIPHER"
bad unknown_ciphersuites -- "${GOOD[@]}" --ciphersuites "TLS_NOSUCH" \
    ++ "--ciphersuites" "TLS_NOSUCH"

# ---------------------------------------------------------------- Redis URL (exit 2 from here on)

WANT=2

bad redis_url_bad_port_hides_password -- "${GOOD[@]}" --redis "redis://app:topsecretpw@127.0.0.1:99999" \
    ++ "--redis" "bad URL" "99999" "!topsecretpw"
bad redis_password_in_argv_is_refused_naming_the_alternatives -- "${GOOD[@]}" --redis "redis://app:topsecretpw@127.0.0.1:6379" \
    ++ "--redis" "--redis-pass-file" "TLSCACHE_REDIS_PASS" "!topsecretpw"
bad redis_pass_flag_is_refused -- "${GOOD[@]}" --redis-pass topsecretpw \
    ++ "--redis-pass" "--redis-pass-file" "!topsecretpw"
bad redis_url_wrong_scheme -- "${GOOD[@]}" --redis "http://127.0.0.1:6379" \
    ++ "--redis" "http://127.0.0.1:6379"
bad redis_url_from_env_hides_password TLSCACHE_REDIS="redis://:envsecretpw@host:0" -- "${GOOD[@]}" \
    ++ "--redis" "TLSCACHE_REDIS" "!envsecretpw"

# ---------------------------------------------------------------- flag values

bad session_timeout_not_a_number -- "${GOOD[@]}" --session-timeout abc \
    ++ "--session-timeout" "\"abc\"" "1..86400"
bad session_timeout_trailing_junk -- "${GOOD[@]}" --session-timeout=300s \
    ++ "--session-timeout" "\"300s\""
bad session_timeout_overflow -- "${GOOD[@]}" --session-timeout 18446744073709551916 \
    ++ "--session-timeout" "18446744073709551916"
bad session_timeout_from_env TLSCACHE_SESSION_TIMEOUT=0 -- "${GOOD[@]}" \
    ++ "--session-timeout" "TLSCACHE_SESSION_TIMEOUT" "\"0\""
bad workers_out_of_range -- "${GOOD[@]}" --workers 0 \
    ++ "--workers" "\"0\""
bad listen_without_port -- "${GOOD[@]}" --listen nohost \
    ++ "--listen" "\"nohost\""
bad listen_ipv6_without_brackets -- "${GOOD[@]}" --listen ::1:443 \
    ++ "--listen" "brackets"
bad listen_port_out_of_range -- "${GOOD[@]}" --listen 127.0.0.1:70000 \
    ++ "--listen" "70000"
bad node_with_bad_characters -- "${GOOD[@]}" --node "a/b" \
    ++ "--node" "\"a/b\""
bad node_with_newline_stays_one_line -- "${GOOD[@]}" --node $'evil\nforged line' \
    ++ "--node" '\x0a'
# 70 control bytes, each quoted as \xNN: the quoted value once overflowed its buffer (exit 139).
bad node_of_control_bytes_is_quoted_without_overflow -- "${GOOD[@]}" --node "$(printf '\001%.0s' $(seq 70))" \
    ++ "--node" '\x01\x01' '"...'
bad empty_alpn -- "${GOOD[@]}" --alpn "" \
    ++ "--alpn" "empty"
bad min_above_max -- "${GOOD[@]}" --min-tls 1.3 --max-tls 1.2 \
    ++ "--min-tls" "--max-tls"
bad unknown_tls_version -- "${GOOD[@]}" --min-tls 1.1 \
    ++ "--min-tls" "\"1.1\""
bad unknown_resumption_mode -- "${GOOD[@]}" --resumption sometimes \
    ++ "--resumption" "\"sometimes\""
bad tickets_without_daemon -- "${GOOD[@]}" --resumption tickets \
    ++ "--resumption" "--keyd"
bad unknown_log_level -- "${GOOD[@]}" --log-level loud \
    ++ "--log-level" "\"loud\""
bad lookup_timeout_out_of_range -- "${GOOD[@]}" --lookup-timeout 10001 \
    ++ "--lookup-timeout" "\"10001\""
bad unknown_flag -- "${GOOD[@]}" --sesion-timeout 5 \
    ++ "--sesion-timeout" "unknown flag"
bad stray_argument -- "${GOOD[@]}" extra \
    ++ "\"extra\"" "unexpected argument"
bad flag_without_value -- "${GOOD[@]}" --workers \
    ++ "--workers" "needs a value"

# ---------------------------------------------------------------- secret files (exit 1)

WANT=1
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$P/open.secret"
chmod 644 "$P/open.secret"
cp "$P/p12.pass" "$P/open.pass" && chmod 640 "$P/open.pass"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$P/closed.secret"
chmod 600 "$P/closed.secret"
bad keyd_secret_readable_by_others_is_refused -- "${GOOD[@]}" --keyd 127.0.0.1:1 --keyd-secret-file "$P/open.secret" \
    ++ "--keyd-secret-file" "0644" "chmod 600 $P/open.secret"
bad pfx_pass_file_readable_by_group_is_refused -- --pfx "$P/p12.pfx" --pfx-pass-file "$P/open.pass" \
    ++ "--pfx-pass-file" "0640" "chmod 600 $P/open.pass" "!correct horse"
bad seal_secret_readable_by_others_is_refused -- "${GOOD[@]}" --seal-secret-file "$P/open.secret" \
    ++ "--seal-secret-file" "0644" "chmod 600 $P/open.secret"
bad redis_pass_file_readable_by_group_is_refused -- "${GOOD[@]}" --redis-pass-file "$P/open.pass" \
    ++ "--redis-pass-file" "0640" "chmod 600 $P/open.pass" "!correct horse"
bad seal_secret_missing_is_refused -- "${GOOD[@]}" --seal-secret-file "$P/nope.secret" \
    ++ "--seal-secret-file" "$P/nope.secret"
BIN=$DAEMON
bad daemon_secret_readable_by_others_is_refused -- --secret-file "$P/open.secret" \
    ++ "--secret-file" "chmod 600 $P/open.secret"

# ---------------------------------------------------------------- the daemon: usage (exit 2)

WANT=2
bad daemon_lead_above_rotate -- --secret-file "$P/closed.secret" --rotate 60 --lead 61 \
    ++ "--lead" "--rotate 60"
bad daemon_lead_above_rotate_from_env TLSCACHE_DAEMON_ROTATE=60 TLSCACHE_DAEMON_LEAD=120 -- --secret-file "$P/closed.secret" \
    ++ "--lead" "--rotate 60"
bad daemon_window_over_a_week -- --secret-file "$P/closed.secret" --rotate 86400 --ticket-lifetime 604800 \
    ++ "--ticket-lifetime" "7 days"
bad daemon_window_over_64_keys -- --secret-file "$P/closed.secret" --rotate 1 --ticket-lifetime 62 \
    ++ "--ticket-lifetime" "61 x --rotate"
bad daemon_bad_number_from_env TLSCACHE_DAEMON_ROTATE=1h -- --secret-file "$P/closed.secret" \
    ++ "--rotate (from TLSCACHE_DAEMON_ROTATE)" "\"1h\""
bad daemon_without_secret_file -- \
    ++ "--secret-file" "required"
bad daemon_unknown_flag -- --secret-file "$P/closed.secret" --rotat 5 \
    ++ "--rotat" "unknown flag"
bad daemon_flag_wins_over_env TLSCACHE_DAEMON_LEAD=1 -- --secret-file "$P/closed.secret" --rotate 10 --lead 11 \
    ++ "--lead" "11"
BIN=$SERVER

# ---------------------------------------------------------------- the bench: the same codes

"$BENCH" --target 127.0.0.1:0 >/dev/null 2>"$TLSC_TMP/bench.err"
check "bench_bad_target_exits_2" [ "$?/$(wc -l <"$TLSC_TMP/bench.err")" = 2/1 ]
"$BENCH" --help >/dev/null 2>&1
check "bench_help_exits_0" [ "$?" = 0 ]
"$DAEMON" --help >"$TLSC_TMP/daemon.help" 2>&1
check "daemon_help_exits_0_and_names_the_exit_codes" grep -q "2 bad usage" "$TLSC_TMP/daemon.help"
"$SERVER" --version >/dev/null 2>&1
check "server_version_exits_0" [ "$?" = 0 ]

# ---------------------------------------------------------------- the check itself

# A good configuration does start and listen, so "nothing listening" above is not vacuous.
start_redis || exit 1
port=$(free_port)
"$SERVER" --listen "127.0.0.1:$port" --workers 1 --redis "redis://127.0.0.1:$REDIS_PORT" "${GOOD[@]}" \
    >"$TLSC_TMP/good.out" 2>"$TLSC_TMP/good.err" </dev/null &
good_pid=$!
track "$good_pid"
if wait_port "$port" 20; then
    pass "good_config_listens: the port check sees a running server"
else
    fail "good_config_listens"
    sed 's/^/    stderr: /' "$TLSC_TMP/good.err" | head -20
fi

finish
