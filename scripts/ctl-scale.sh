#!/usr/bin/env bash
# How long tlscache-ctl takes over a large session store: plants N fake session records (half
# for a.example, half for b.example) in a private redis-server, then times sessions list,
# revoke --sni --dry-run, revoke --sni and revoke --all. The figures in docs/operations.md come
# from this script: scripts/ctl-scale.sh [N] [BUILD_DIR]   (default 100000, build)
set -euo pipefail
n=${1:-100000}
ctl=${2:-build}/ctl/tlscache-ctl
dir=$(mktemp -d "${TMPDIR:-/tmp}/ctl-scale.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" --daemonize no >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$n" <<'PY' | redis-cli -p "$port" --pipe | tail -1
import os, sys
for i in range(int(sys.argv[1])):
    args = ["HSET", "tlscache:sess:" + os.urandom(32).hex(), "der", "S" + "x" * 200, "proto", "TLSv1.2",
            "cipher", "ECDHE-RSA-AES128-GCM-SHA256", "sni", "a.example" if i % 2 else "b.example",
            "created", "1764000000", "node", "A" if i % 3 else "B", "worker", "1"]
    sys.stdout.write("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args))
PY
echo "$(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
for cmd in "sessions list --limit 1000000" "sessions revoke --sni a.example --dry-run" \
    "sessions revoke --sni a.example" "sessions revoke --all"; do
    s=$EPOCHREALTIME
    last=$("$ctl" --redis "redis://127.0.0.1:$port" $cmd | tail -1)
    printf '%-42s %6s s  %s\n' "$cmd" "$(awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')" "$last"
done
