# syntax=docker/dockerfile:1
#
# tollgate's container image: the release binary on distroless, non-root.
#
#   docker build -t registry.example.com/tollgate:0.1.0 .
#
# The binary links glibc (aws-lc-rs is built with cc), so the runtime is
# distroless `cc` (glibc, libgcc, CA certificates, no shell) of the same
# Debian release as the builder. CI builds the same binary with
# `cargo build --release --locked` (.ci/run).

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# Only what the build reads: the manifest and lock, the build script and
# the protos it compiles, the sources, the bench target Cargo.toml names,
# and the development key `tollgate dev-token` embeds.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY benches ./benches
COPY config/dev ./config/dev
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/tollgate /tollgate

FROM gcr.io/distroless/cc-debian13:nonroot
COPY --from=build /tollgate /usr/local/bin/tollgate
# distroless's `nonroot` user; the Helm chart runs it with a read-only
# root filesystem and no capabilities.
USER 65532:65532
# The config is mounted here (the chart mounts its ConfigMap); secrets are
# referenced from it as {env: VAR} or {file: PATH}.
ENV TOLLGATE_CONFIG=/etc/tollgate/config/tollgate.yaml
# gRPC ext_authz; HTTP ext_authz and admin when configured.
EXPOSE 9191 9192 9193
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve"]
