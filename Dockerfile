# syntax=docker/dockerfile:1
# tlscache: one image holding tlscache-server, tlscache-daemon and tlscache-bench.
# Built by deploy/build-images.sh (which first makes sure debian:bookworm-slim exists, pulling
# or debootstrapping it) or by `docker build -t tlscache .` where the base can be pulled.
# Works with the classic builder (docker 20.10, docker-compose 1.29) and BuildKit alike.

ARG BASE_IMAGE=debian:bookworm-slim

############################ build stage ############################
FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libssl-dev libhiredis-dev libuv1-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . /src
# A release build (-Werror stays off, the CMake default: a newer compiler's new warning must
# not fail an image build; CI's own builds keep the tree warning-clean), hardened (PIE, full
# RELRO, stack protector, FORTIFY_SOURCE), without the tests. `cmake --install` puts the
# programs (component "runtime": every binary a host install gets, docs/operations.md
# "## Install"), stripped, under /out/usr/local; the runtime stage takes them from there.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DTLSC_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/out cmake --install /build --prefix /usr/local --strip --component runtime \
 && ls -l /out/usr/local/bin

############################ runtime stage ############################
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libhiredis0.14 libuv1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
# A non-root user with fixed ids; group 10000 ("tlscache-secrets") may read the compose
# secrets that deploy/gen-secrets.sh writes (root:10000, mode 0640).
RUN groupadd --system --gid 10000 tlscache-secrets \
 && groupadd --system --gid 10001 tlscache \
 && useradd --system --uid 10001 --gid tlscache --groups tlscache-secrets \
        --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tlscache

COPY --from=build /out/usr/local/bin/ /usr/local/bin/
COPY deploy/image/tlscache-entrypoint deploy/image/tlscache-healthcheck /usr/local/bin/
# Fail the build now, not at run time, if a runtime library is missing.
RUN set -e; for b in /usr/local/bin/tlscache-*; do \
        if ldd "$b" 2>/dev/null | grep 'not found'; then echo "missing library for $b" >&2; exit 1; fi; \
    done

# No ":group" on USER: with an explicit group Docker drops the supplementary group 10000.
USER tlscache
WORKDIR /
EXPOSE 8443
# Server health: a worker answers a TLS ClientHello (see tlscache-healthcheck). The daemon and
# bench services override or disable it in docker-compose.yml.
HEALTHCHECK --interval=5s --timeout=4s --start-period=10s --retries=3 \
    CMD ["tlscache-healthcheck", "tls", "127.0.0.1:8443"]
ENTRYPOINT ["tlscache-entrypoint"]
CMD ["tlscache-server", "--help"]
