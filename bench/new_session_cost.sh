# Sourced by bench/failover.sh and bench/cluster_replicas.sh: the cost of a new session with
# --store-replicas N, measured the same way for Sentinel and for a Redis Cluster.

# ticks PID...: CPU (utime + stime, clock ticks) the processes used so far.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
# tree PID: the process and its children (a node's master and workers).
tree() { echo "$1" $(ps -o pid= --ppid "$1"); }

COST_HEADER="| --store-replicas | new sessions/s | failed | full p50 ms | full p99 ms | node CPU s/1000 | Redis CPU s/1000 |
|---|---|---|---|---|---|---|"

# cost_row N JSON_OUT NODE_PID REDIS_PID... : runs `tlscache-bench --tls 1.2 --mode full`
# for $SECS at concurrency 16 against 127.0.0.1:$NP (every handshake makes and stores a new
# session) and prints one row of COST_HEADER: rate, latency, and node and Redis CPU per 1000.
cost_row() {
    local n=$1 json=$2 node=$3 procs n0 n1 r0 r1 hz
    shift 3
    procs=$(tree "$node")
    n0=$(ticks $procs) r0=$(ticks "$@")
    timeout $((SECS + 30)) "$BENCH" --target "127.0.0.1:$NP" --tls 1.2 --mode full --duration "$SECS" --concurrency 16 \
        --quiet --json "$json" >/dev/null 2>&1
    n1=$(ticks $procs) r1=$(ticks "$@")
    hz=$(getconf CLK_TCK)
    jq -r --arg n "$n" --argjson nt "$((n1 - n0))" --argjson rt "$((r1 - r0))" --argjson hz "$hz" '
        .handshakes.total as $t |
        "| \($n) | \(.handshakes.total_per_sec | floor) | \(.connections_failed) | \(.latency_ms.full.p50) | \(.latency_ms.full.p99) | \(if $t > 0 then ($nt / $hz * 1000 / $t * 1000 | floor) / 1000 else "-" end) | \(if $t > 0 then ($rt / $hz * 1000 / $t * 1000 | floor) / 1000 else "-" end) |"' \
        "$json"
}
