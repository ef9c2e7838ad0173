# iamwatchd in a container: a multi-stage build, a small non-root runtime image.
#
#   docker build -t iamwatchd .
#   docker run -d --name iamwatchd \
#     -v /etc/iamwatchd:/etc/iamwatchd:ro -v iamwatchd-state:/var/lib/iamwatchd \
#     --env-file /etc/iamwatchd/iamwatchd.env -e AWS_REGION=us-east-1 \
#     iamwatchd
#
# Credentials: the standard AWS chain (task role, instance role, or AWS_* in the env file).
# The configuration must set [store] state_directory = "/var/lib/iamwatchd" and, for the health
# check, [metrics] listen = "127.0.0.1:9847".

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY deploy ./deploy
COPY config ./config
RUN cargo build --release --locked --bin iamwatchd \
 && strip target/release/iamwatchd \
 && mkdir -p /out/state

# distroless/cc: glibc, CA certificates and a "nonroot" user, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/iamwatchd /usr/local/bin/iamwatchd
COPY --from=build /src/config/iamwatchd.toml /usr/share/iamwatchd/iamwatchd.toml.example
# The state directory belongs to distroless's "nonroot" (65532): a named volume mounted here starts
# with that ownership, so the daemon can write its SQLite store without running as root.
COPY --from=build --chown=65532:65532 /out/state /var/lib/iamwatchd
USER 65532:65532
VOLUME ["/var/lib/iamwatchd"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/iamwatchd", "health", "--url", "http://127.0.0.1:9847/healthz"]
ENTRYPOINT ["/usr/local/bin/iamwatchd"]
CMD ["run", "--config", "/etc/iamwatchd/iamwatchd.toml"]
