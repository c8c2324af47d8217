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
# ALLOW_PARTIAL=1 builds an image from whichever of the three binaries the tree has (used while
# they are being written); the default wants all three.
ARG ALLOW_PARTIAL=0
# -DTLSC_WERROR=OFF: the warning-clean policy is enforced by CI's own builds; an image build
# with a newer compiler must not fail over a new warning.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DTLSC_WERROR=OFF \
 && mkdir -p /out/bin \
 && for t in tlscache-server tlscache-daemon tlscache-bench; do \
        if cmake --build /build --target help | grep -qx "\.\.\. $t"; then \
            cmake --build /build --target "$t" -j"$(nproc)" \
            && cp "$(find /build -type f -name "$t" -perm -u+x | head -n1)" /out/bin/ \
            && strip --strip-unneeded "/out/bin/$t"; \
        elif [ "$ALLOW_PARTIAL" = 1 ]; then echo "warning: no target $t in this tree" >&2; \
        else echo "error: no target $t in this tree (build with ALLOW_PARTIAL=1 to skip it)" >&2; exit 1; fi \
    done \
 && ls -l /out/bin

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

COPY --from=build /out/bin/ /usr/local/bin/
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
