# syntax=docker/dockerfile:1
#
# The container images of Ballast, one target per binary:
#
#   docker build --target ballast        -t ghcr.io/ballast-dev/ballast:0.1.0 .
#   docker build --target ballast-worker -t ghcr.io/ballast-dev/ballast-worker:0.1.0 .
#
# (`make image` does both with docker, podman or buildah; scripts/build-image.sh.) The paths,
# user, ports and command lines here are the ones manifests/ runs:
# controller/tests/integration/manifests/image.rs fails when the two disagree.

# The build: a release build of both binaries from the committed Cargo.lock (--locked: a lock
# file that no longer matches Cargo.toml fails the build instead of resolving new versions).
# Debian 12 (bookworm), the same glibc as the runtime base below.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
# aws-lc-sys (the TLS crypto of the AWS SDK and rustls) compiles C; cmake is its fallback builder.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ballast --bin ballast-worker

# The runtime base: distroless `cc` (glibc, libgcc, CA certificates; no shell, no package
# manager), its `nonroot` variant, whose default user is 65532. Pinned by tag: no registry is
# reachable where this file was written, so no digest could be read. Pin the digest you have
# verified before publishing (`docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot`
# prints it) as `FROM gcr.io/distroless/cc-debian12:nonroot@sha256:…`.
FROM gcr.io/distroless/cc-debian12:nonroot AS ballast
COPY --from=build /src/target/release/ballast /usr/local/bin/ballast
USER 65532:65532
# `ballast run --metrics-addr`: /healthz, /readyz, /metrics.
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/ballast"]
CMD ["run", "/etc/ballast/banking.yaml", "--metrics-addr", "0.0.0.0:9090"]

FROM gcr.io/distroless/cc-debian12:nonroot AS ballast-worker
COPY --from=build /src/target/release/ballast-worker /usr/local/bin/ballast-worker
USER 65532:65532
# `ballast-worker consume --metrics-addr`: /healthz, /readyz, /metrics.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/ballast-worker"]
CMD ["consume", "--blueprint", "/etc/ballast/banking.yaml", "--metrics-addr", "0.0.0.0:9464"]
