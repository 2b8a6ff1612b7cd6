# syntax=docker/dockerfile:1
# The Kafka-to-Postgres worker image. Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t hookline-worker:TAG .
# (scripts/images builds all three with one tag.)

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# librdkafka is compiled from the copy rdkafka-sys bundles (rdkafka 0.39 with
# its default `libz` and the `ssl` feature: rdkafka-sys 4.10.0+2.12.1 in
# Cargo.lock has openssl-sys, but no cmake, zstd-sys, sasl2-sys or curl-sys).
# `ssl` links Debian's OpenSSL 3 (libssl-dev here, found by openssl-sys with
# pkg-config; libssl3 is in the distroless runtime image): TLS and the SASL
# mechanisms PLAIN and SCRAM to the brokers, with no OpenSSL compiled here
# (`ssl-vendored` would compile one, for minutes). Without the
# `cmake-build` feature its build script runs librdkafka's own ./configure
# (mklove, a bash script) and `make libs`, so what it needs is make and a C and
# a C++ compiler (build-essential). python3 writes the shared library's linker
# script (lds-gen.py; configure drops the script, with an error line, when
# python3 is missing). cmake is used only with `cmake-build`, and pkg-config
# only if present (mklove falls back to compiling a test program): this build
# needs cmake for nothing, and pkg-config for OpenSSL. Turning on rdkafka's
# `zstd` or `gssapi` adds what those need.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config python3 libssl-dev \
 && rm -rf /var/lib/apt/lists/*
# zlib is compiled in, as the runtime image has no libz: LIBZ_SYS_STATIC=1 makes
# libz-sys build its bundled zlib with cc (no pkg-config probe), and rdkafka-sys
# hands that zlib to librdkafka's configure (-I/-L from DEP_Z_ROOT); a
# librdkafka whose configure finds no zlib builds without gzip, silently.
# SQLX_OFFLINE comes from .cargo/config.toml, so queries are checked against
# .sqlx/ without a database.
ENV LIBZ_SYS_STATIC=1 CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# The registry and target caches are shared by the three images, so the second
# and third builds reuse the compiled dependencies.
RUN --mount=type=cache,id=hookline-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=hookline-target,target=/src/target \
    cargo build --release --locked -p hookline-worker --bin hookline-worker \
 && install -D target/release/hookline-worker /out/hookline-worker

# glibc, libgcc, OpenSSL 3 (libssl3, for librdkafka's TLS) and CA certificates,
# no shell, user 65532: all the binary needs. TLS to PostgreSQL and Kubernetes
# is rustls; the schemas and migrations are compiled
# in; configuration and secrets are mounted files and nothing is written, so a
# read-only root filesystem works.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="hookline-worker" \
      org.opencontainers.image.description="The Kafka-to-Postgres worker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/hookline/hookline"
COPY --from=build /out/hookline-worker /usr/local/bin/hookline-worker
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/hookline-worker"]
