#!/usr/bin/env bash
# What each command shape the server can send costs Redis itself, apart from the network: N
# session keys written and then read or taken, each shape piped (redis-cli --pipe) into a fresh
# Redis, with Redis's own counters read around it (INFO commandstats usec, INFO cpu).
# Prints, per shape: commands per operation (a script's inner commands counted, as Redis does),
# Redis CPU (user + sys) µs per operation, and commandstats' usec_per_call of each command (EXEC's
# and EVAL's include the commands they ran).
#
#   bench/redis_shapes.sh [--n N] [--der BYTES]
#
# A measurement, not a test. The Redis it starts is ended by PID.
set -u
N=50000
DER=200
while [ $# -gt 0 ]; do
    case $1 in
    --n) N=$2; shift 2 ;;
    --der) DER=$2; shift 2 ;;
    *) echo "usage: $0 [--n N] [--der BYTES]" >&2; exit 1 ;;
    esac
done
for t in redis-server redis-cli python3 awk; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsc-shapes.XXXXXX")
RPID=
trap '[ -n "$RPID" ] && kill -TERM "$RPID" 2>/dev/null; [ -n "$RPID" ] && wait "$RPID" 2>/dev/null; rm -rf "$TMP"' EXIT
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --logfile "$TMP/redis.log" &
RPID=$!
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
R() { redis-cli -p "$RPORT" "$@"; }

# gen SHAPE: the RESP of N operations of SHAPE on keys t:sess:<i>.
gen() {
    python3 - "$1" "$N" "$DER" <<'PY'
import os, sys
shape, n, der = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
take = ("local v = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[2]) "
        "if v[1] and v[2] == ARGV[3] then redis.call('DEL', KEYS[1]) return v[1] end return false")
import hashlib
sha = hashlib.sha1(take.encode()).hexdigest()
out = sys.stdout.buffer
def cmd(*a):
    a = [x if isinstance(x, bytes) else str(x).encode() for x in a]
    out.write(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
rec = os.urandom(der)
meta = b"TLSv1.3 TLS_AES_128_GCM_SHA256 localhost - 1767225600 node-1 0"
fields8 = [b"der", rec, b"proto", b"TLSv1.3", b"cipher", b"TLS_AES_128_GCM_SHA256", b"sni", b"localhost",
           b"alpn", b"", b"created", b"1767225600", b"node", b"node-1", b"worker", b"0"]
if shape == "script-load":
    cmd("SCRIPT", "LOAD", take)
for i in range(n):
    k = b"t:sess:%064x" % i
    if shape == "store-multi-8":
        cmd("MULTI"); cmd("HSET", k, *fields8); cmd("EXPIRE", k, 300); cmd("EXEC")
    elif shape == "store-8":
        cmd("HSET", k, *fields8); cmd("PEXPIRE", k, 300000)
    elif shape == "store-multi-2":
        cmd("MULTI"); cmd("HSET", k, b"der", rec, b"meta", meta); cmd("PEXPIRE", k, 300000); cmd("EXEC")
    elif shape == "store-2":
        cmd("HSET", k, b"der", rec, b"meta", meta); cmd("PEXPIRE", k, 300000)
    elif shape == "lookup-hget":
        cmd("HGET", k, "der")
    elif shape == "take-eval":
        cmd("EVAL", take, 1, k, "der", "proto", "TLSv1.3")
    elif shape == "take-evalsha":
        cmd("EVALSHA", sha, 1, k, "der", "proto", "TLSv1.3")
    elif shape == "take-multi-hget-del":
        cmd("MULTI"); cmd("HGET", k, "der"); cmd("DEL", k); cmd("EXEC")
    elif shape == "confirm-del":
        cmd("DEL", k)
    elif shape == "string-set":
        cmd("SET", k, rec, "PX", 300000)
    elif shape == "string-get":
        cmd("GET", k)
    elif shape == "string-getdel":
        cmd("GETDEL", k)
PY
}

cpu() { R info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'; }
# run SHAPE [SETUP]: SETUP (a store shape) fills the keys first, outside the counters.
run() {
    local shape=$1 setup=${2:-} c0 c1
    R flushall >/dev/null
    [ -n "$setup" ] && gen "$setup" | R --pipe >/dev/null
    gen "$shape" >"$TMP/in"
    R config resetstat >/dev/null
    c0=$(cpu)
    R --pipe <"$TMP/in" >/dev/null
    c1=$(cpu)
    R info commandstats | tr -d '\r' | grep '^cmdstat_' | grep -v 'config|resetstat\|cmdstat_info' >"$TMP/cs"
    awk -F'[:=,]' -v n="$N" -v shape="$shape" -v cpu="$(echo "$c1 - $c0" | bc -l)" '
        $1 != "cmdstat_echo" { cmd = $1; sub(/^cmdstat_/, "", cmd); calls += $3; list = list (list ? ", " : "") cmd " " $7 }
        END { printf "| %s | %.1f | %.2f | %s |\n", shape, calls / n, cpu * 1e6 / n, list }' "$TMP/cs"
}

echo "| shape | commands / op (as Redis counts them) | Redis CPU µs / op | µs per call, by command (commandstats) |"
echo "|---|---|---|---|"
run store-multi-8
run store-8
run store-multi-2
run store-2
run lookup-hget store-2
run take-eval store-8
gen script-load | R --pipe >/dev/null
run take-evalsha store-8
run take-multi-hget-del store-2
run confirm-del store-2
run string-set
run string-get string-set
run string-getdel string-set
echo
echo "N = $N keys per shape, a $DER-byte record, piped with redis-cli --pipe into redis-server $(redis-server --version | awk '{print $3}')."
echo "Piped, so Redis's read/write syscalls are shared by many commands: this is the cost of the commands themselves."
