# syntax=docker/dockerfile:1
# The slipway-releases image. Build from the repository root (the go.work
# workspace needs every module), with BuildKit:
#   docker build -f deploy/docker/releases.Dockerfile -t slipway-releases .
# The five <service>.Dockerfile files differ only in the service's name;
# tools/charts checks that they stay so.

# The build runs on the builder's platform and cross-compiles (CGO is off),
# so multi-platform builds need no emulation. The module and build caches
# are BuildKit cache mounts, shared by the five builds.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
# A static binary (CGO off; SQLite is pure Go), no VCS stamp (.git is not
# in the context), symbols stripped.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
      go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/slipway ./services/releases/cmd/slipway-releases

# static-debian12 carries CA certificates, tzdata and the nonroot user
# (65532), nothing else: no shell, no package manager. The process writes
# only to mounted volumes (/tmp, the SQLite folder), so the root filesystem
# can be read-only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slipway /slipway
USER 65532:65532
ENTRYPOINT ["/slipway"]
