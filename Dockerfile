# iamwatchd in a container: a multi-stage build, a small non-root runtime image.
#
#   docker build -t iamwatchd .
#   docker run -d --name iamwatchd --read-only --cap-drop ALL --stop-timeout 30 \
#     -v /etc/iamwatchd:/etc/iamwatchd:ro -v iamwatchd-state:/var/lib/iamwatchd \
#     --env-file /etc/iamwatchd/iamwatchd.env -e AWS_REGION=us-east-1 \
#     iamwatchd
#
# Credentials: the standard AWS chain (task role, instance role, or AWS_* in the env file).
# The configuration must set [store] state_directory = "/var/lib/iamwatchd" and, for the health
# check, [metrics] listen = "127.0.0.1:9847".

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY deploy ./deploy
COPY config ./config
# `iamwatchd --version` names the commit and the build date (build.rs): the context has no .git,
# so pass them, e.g. --build-arg IAMWATCHD_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
# --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct).
ARG IAMWATCHD_GIT_COMMIT=unknown
ARG SOURCE_DATE_EPOCH
# Cargo's registry and target directory are cache mounts: a rebuild after a change compiles the
# crate, not the 400 dependencies (the binary is copied out, the cache is not in the image).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin iamwatchd \
 && mkdir -p /out/state \
 && cp target/release/iamwatchd /out/iamwatchd \
 && strip /out/iamwatchd

# distroless/cc: glibc, CA certificates and a "nonroot" user, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG IAMWATCHD_GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="iamwatchd" \
      org.opencontainers.image.description="Reports every AWS IAM change and any tampering with the monitoring, fast and exactly once." \
      org.opencontainers.image.source="https://github.com/iamwatchd/iamwatchd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${IAMWATCHD_GIT_COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/iamwatchd /usr/local/bin/iamwatchd
COPY --from=build /src/config/iamwatchd.toml /usr/share/iamwatchd/iamwatchd.toml.example
# The state directory belongs to distroless's "nonroot" (65532): a named volume mounted here starts
# with that ownership, so the daemon can write its SQLite store without running as root.
COPY --from=build --chown=65532:65532 /out/state /var/lib/iamwatchd
USER 65532:65532
VOLUME ["/var/lib/iamwatchd"]
# Container logs are read by machines: one JSON object per line (the file's [log] format is
# overridden; set IAMWATCHD__LOG__FORMAT=human for readable lines).
ENV IAMWATCHD__LOG__FORMAT=json
# `iamwatchd health` probes http://$IAMWATCHD__METRICS__LISTEN/healthz when that is set (it moves
# the daemon's listener too), else the default listener 127.0.0.1:9847.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/iamwatchd", "health"]
# SIGTERM (docker/podman stop) finishes the notifications in flight within 20 s: give it 30
# (docker run --stop-timeout 30, podman stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/iamwatchd"]
CMD ["run", "--config", "/etc/iamwatchd/iamwatchd.toml"]
