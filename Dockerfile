# tandem's image: one static binary on a minimal base, running as a non-root user.
#
# The base images are build arguments, so this one file builds everywhere: with the public defaults below, or,
# on a machine that reaches no registry, with images made locally (hack/image.sh does that, and builds this
# file with them).
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
# distroless static, nonroot (UID 65532), pinned by digest for reproducible builds.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

FROM ${GO_IMAGE} AS build
WORKDIR /src
ARG GOPROXY=https://proxy.golang.org,direct
ENV CGO_ENABLED=0 GOPROXY=${GOPROXY} GOFLAGS=-buildvcs=false
# Modules first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY webhook/ webhook/
COPY backup/ backup/
ARG VERSION=devel
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tandem ./cmd/tandem

FROM ${BASE_IMAGE}
ARG VERSION=devel
LABEL org.opencontainers.image.title=tandem \
      org.opencontainers.image.description="Backup sidecars for annotated database Pods; Job and CronJob defaults" \
      org.opencontainers.image.version=${VERSION}
COPY --from=build /out/tandem /tandem
USER 65532:65532
ENTRYPOINT ["/tandem"]
CMD ["webhook"]
