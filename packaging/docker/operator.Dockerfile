# The operator's image, the one charts/novacula-operator deploys by default
# (values.yaml: image.repository and image.tag):
#   docker build -f packaging/docker/operator.Dockerfile -t ghcr.io/novacula/novacula-operator:1.0.0 .
# (from the workspace root).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p novacula-operator

# glibc, CA certificates and a nonroot user; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="novacula-operator" \
      org.opencontainers.image.description="Novacula operator: runs the control plane's nodes as BlockchainNode resources" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/release/novacula-operator /usr/local/bin/novacula-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/novacula-operator"]
