# arrayd as one small image: a static-enough release binary on Debian slim, running as a
# non-root user, serving a read-only data volume at /data on 0.0.0.0:8080.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY openapi.yaml ./
RUN cargo build --release --locked && strip target/release/arrayd

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home arrayd
COPY --from=build /src/target/release/arrayd /usr/local/bin/arrayd
USER arrayd
ENV ARRAYD_DATA_DIR=/data \
    ARRAYD_LISTEN=0.0.0.0:8080 \
    ARRAYD_STATE_DIR=/state
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/arrayd"]
