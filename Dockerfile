# syntax=docker/dockerfile:1
# arrayd as one small image: the release binary on Debian slim, running as a non-root user,
# serving a read-only data volume at /data on 0.0.0.0:8080, registrations in the /state volume.
#
#   docker build -t arrayd .
#   docker run --rm -p 8080:8080 -v "$PWD/data:/data:ro" -v arrayd-state:/state arrayd
#
# The base images are build arguments so the file builds where no registry is reachable (the
# project's container test feeds a locally made Debian bookworm base). `--target prebuilt`
# takes target/release/arrayd (or PREBUILT_BINARY) from the build context instead of
# compiling it (the test builds it with cargo first); it is the same runtime stage either way.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS compile
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY openapi.yaml ./
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/arrayd /out/arrayd \
    && strip /out/arrayd

# Everything the image is but the binary.
FROM ${RUNTIME_IMAGE} AS runtime
# A fixed uid/gid so a volume's owner can be set from outside (chown 10001 on the host,
# runAsUser/fsGroup 10001 in Kubernetes).
RUN groupadd --gid 10001 arrayd \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin arrayd \
    && mkdir -p /data /state \
    && chown 10001:10001 /state
USER 10001:10001
# Tokens are files (Docker and Kubernetes secrets under /run/secrets): set
# ARRAYD_READ_TOKEN_FILE / ARRAYD_ADMIN_TOKEN_FILE to them; a named file that is missing or
# empty stops the server at start with exit status 1.
ENV ARRAYD_DATA_DIR=/data \
    ARRAYD_LISTEN=0.0.0.0:8080 \
    ARRAYD_STATE_DIR=/state \
    ARRAYD_SHUTDOWN_GRACE_SECS=30
VOLUME ["/state"]
EXPOSE 8080
# The slim base has no HTTP client; bash's /dev/tcp is one.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/arrayd"]

# `--target prebuilt`: a binary built outside (BuildKit and buildah skip this stage otherwise).
FROM runtime AS prebuilt
ARG PREBUILT_BINARY=target/release/arrayd
COPY ${PREBUILT_BINARY} /usr/local/bin/arrayd

# The default: the binary of the compiling stage.
FROM runtime
COPY --from=compile /out/arrayd /usr/local/bin/arrayd
