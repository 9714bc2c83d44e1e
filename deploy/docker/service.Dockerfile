# syntax=docker/dockerfile:1
# One image recipe for the five Slipway binaries. Build from the repository
# root (the go.work workspace needs every module):
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=registry -t slipway-registry .

# The build runs on the builder's platform and cross-compiles (CGO is off),
# so multi-platform builds need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG SERVICE
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    case "${SERVICE}" in \
      gateway) pkg=./gateway/cmd/slipway-gateway ;; \
      clusters|registry|catalog|releases) pkg=./services/${SERVICE}/cmd/slipway-${SERVICE} ;; \
      *) echo "SERVICE must be gateway, clusters, registry, catalog or releases (got '${SERVICE}')" >&2; exit 1 ;; \
    esac && \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
      go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/slipway "${pkg}"

# static-debian12 carries CA certificates and tzdata, nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slipway /slipway
USER 65532:65532
ENTRYPOINT ["/slipway"]
