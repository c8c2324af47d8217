#!/usr/bin/env bash
# Starts the Docker engine when it is installed but not running (a fresh Debian 12 machine has
# no init system starting it). Leaves a running engine alone. Exit 0 when `docker info` works.
set -u
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null 2>&1 || { echo "ensure-docker: dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
log=/var/log/tlscache-dockerd.log
echo "ensure-docker: starting dockerd (log: $log)"
(setsid dockerd >"$log" 2>&1 &)
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "ensure-docker: dockerd did not come up within 60 s" >&2
tail -20 "$log" >&2
exit 1
