# The one image ebb needs: the controller, and the master/pserver runtime of every job.
#   docker build -t ghcr.io/ebb-dev/ebb:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ebb

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ebb /usr/local/bin/ebb
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ebb"]
