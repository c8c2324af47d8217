#!/usr/bin/env bash
# Builds every image docker-compose.yml needs, from a local debian:bookworm-slim:
#   debian:bookworm-slim  (deploy/base-image.sh: pulled, or debootstrapped + imported)
#   tlscache:latest       (Dockerfile at the root: the three binaries)
#   tlscache-redis:latest (deploy/redis: Debian's redis-server + the ACL/config)
#   tlscache-haproxy:latest (deploy/haproxy: Debian's haproxy + haproxy.cfg)
#   tlscache-backend:latest (deploy/backend: Debian's python3 + tlscache-backend)
# Idempotent and cache-friendly: unchanged inputs rebuild nothing (Docker's layer cache).
# Usage: deploy/build-images.sh [tlscache|redis|haproxy|backend ...]   (default: all)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
# The tag of every image (docker-compose.yml reads the same variable): a test run on a shared
# Docker host builds and runs its own tag, so it never swaps another run's images.
TAG=${TLSCACHE_IMAGE_TAG:-latest}
export BASE_IMAGE

"$ROOT/deploy/base-image.sh"

build() { # build TAG CONTEXT DOCKERFILE [ARGS...]
    local tag=$1 ctx=$2 file=$3
    shift 3
    echo "build-images: $tag" >&2
    # The classic builder (no BuildKit needed): docker 20.10 from Debian has no buildx.
    # --pull=false: the base is local.
    # Output only on failure (the build log), minus the classic builder's deprecation notice.
    local log rc=0
    log=$(DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --pull=false \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" -f "$file" "$@" "$ctx" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$log" | grep -v -e '^DEPRECATED: The legacy builder' -e 'BuildKit is currently disabled' \
            -e 'environment-variable\.$' | tail -n 60 >&2
        echo "build-images: building $tag failed" >&2
        return "$rc"
    fi
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(redis haproxy backend tlscache)
for t in "${targets[@]}"; do
    case $t in
    tlscache) build tlscache:$TAG "$ROOT" "$ROOT/Dockerfile" ;;
    redis) build tlscache-redis:$TAG "$ROOT/deploy" "$ROOT/deploy/redis/Dockerfile" ;;
    haproxy) build tlscache-haproxy:$TAG "$ROOT/deploy" "$ROOT/deploy/haproxy/Dockerfile" ;;
    backend) build tlscache-backend:$TAG "$ROOT/deploy" "$ROOT/deploy/backend/Dockerfile" ;;
    *) echo "build-images: unknown image '$t' (tlscache, redis, haproxy, backend)" >&2; exit 2 ;;
    esac
done
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^(tlscache|debian)' >&2 || true
