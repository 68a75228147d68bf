# The control plane's image: `novacula serve` on a volume.
#   docker build -f packaging/docker/control-plane.Dockerfile -t ghcr.io/novacula/novacula:1.0.0 .
#   docker run -p 8080:8080 -v novacula:/var/lib/novacula ghcr.io/novacula/novacula:1.0.0
# (from the workspace root). The first start prints the owner's password once.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p novacula \
    && install -d -o 65532 -g 65532 -m 0700 /out/var/lib/novacula

# glibc, CA certificates and a nonroot user; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="novacula" \
      org.opencontainers.image.description="Novacula control plane" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/release/novacula /usr/local/bin/novacula
COPY --from=build --chown=65532:65532 /out/var/lib/novacula /var/lib/novacula
ENV NOVACULA_DB=/var/lib/novacula/novacula.redb \
    NOVACULA_LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/novacula"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/novacula", "serve"]
