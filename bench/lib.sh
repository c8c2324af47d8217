# Helpers the bench scripts share (sourced, not run). Every wait is bounded; processes are ended
# by PID only; ports are on 127.0.0.1.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [TRIES]: polls until something accepts on 127.0.0.1:PORT (TRIES x 0.1 s, 10 s
# by default); says so and fails when nothing did.
wait_port() {
    local _
    for _ in $(seq "${2:-100}"); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 did not open" >&2
    return 1
}

# stop_pids PID...: SIGTERM to each, up to 5 s for each to end, then SIGKILL.
stop_pids() {
    local p _
    for p in "$@"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for p in "$@"; do
        [ -n "$p" ] || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    return 0
}

# tree_pids PID...: the PIDs and all their descendants, one per line.
tree_pids() {
    local p kids
    for p in "$@"; do
        [ -d "/proc/$p" ] || continue
        echo "$p"
        kids=$(ps -o pid= --ppid "$p" | tr -d ' ' | tr '\n' ' ')
        [ -n "$kids" ] && tree_pids $kids
    done
}

# tree_ticks PID...: CPU ticks (utime+stime, threads included) of the PIDs and their descendants.
tree_ticks() {
    local total=0 p
    for p in $(tree_pids "$@"); do
        [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $total
}

# redis_clients_ge PORT N: waits (<= 10 s) until the Redis on PORT has at least N clients (the
# workers' links), so the first handshakes do not race the workers' connect.
redis_clients_ge() {
    local _
    for _ in $(seq 100); do
        [ "$(redis-cli -p "$1" client list 2>/dev/null | grep -c .)" -gt "$2" ] && return 0 # counting itself
        sleep 0.1
    done
    echo "redis on $1: fewer than $2 clients after 10 s" >&2
    return 1
}

# bench_secrets DIR: a test PKI in DIR/pki (tests/lib/certs.sh; DIR/pki/combined.pem holds the
# default certificate and its key, for HAProxy and hitch) and a cluster secret in DIR/secret.
bench_secrets() {
    . "$ROOT/tests/lib/certs.sh"
    make_test_pki "$1/pki" >/dev/null || return 1
    cat "$1/pki/default.pem" "$1/pki/default.key" >"$1/pki/combined.pem"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1/secret"
    chmod 600 "$1/secret"
}
