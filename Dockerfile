# tandem's images, from one static binary:
#   the webhook (the default target; --target webhook builds it alone with any builder): the binary on a minimal
#   base, as a non-root user;
#     docker build -t tandem .
#   the backup sidecar (--target backup): the same binary on Debian with the database clients it runs
#   (pg_dump/psql 17, mariadb-dump/mariadb 11.8, and MongoDB's mongodump/mongorestore) and the servers it verifies
#   backups with (PostgreSQL 17 and MariaDB 11.8, which it starts itself, throwaway, on a Unix socket: no
#   cluster, service or data directory is made at build time; nss_wrapper for a user ID without a name), as a
#   non-root user;
#     docker build --target backup -t tandem-backup .
#
# The base images are build arguments, so this one file builds everywhere: with the public defaults below, or,
# on a machine that reaches no registry, with images made locally (hack/image.sh does that, and builds this
# file with them).
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
# distroless static, nonroot (UID 65532), pinned by digest for reproducible builds.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

# Debian 13 (trixie) slim, pinned by digest (the 13.6 rebuild of 2026-08-24): its PostgreSQL 17 client dumps
# servers from 9.2 to 17.
ARG BACKUP_BASE_IMAGE=docker.io/library/debian:13.6-slim@sha256:d7e12182ce18b85b93007c1dedf31f2d29e01ccf3182cc4017c709b6259bc132

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
COPY internal/ internal/
ARG VERSION=devel
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tandem ./cmd/tandem

FROM ${BASE_IMAGE} AS webhook
ARG VERSION=devel
LABEL org.opencontainers.image.title=tandem \
      org.opencontainers.image.description="Backup sidecars for annotated database Pods; Job and CronJob defaults" \
      org.opencontainers.image.version=${VERSION}
COPY --from=build /out/tandem /tandem
USER 65532:65532
ENTRYPOINT ["/tandem"]
CMD ["webhook"]

FROM ${BACKUP_BASE_IMAGE} AS backup
# MongoDB's tools are not in Debian; they come from MongoDB's download site. Empty: the image has none (the
# mongodb profile then fails at start, naming mongodump).
ARG MONGODB_TOOLS_VERSION=100.12.2
ARG TARGETARCH
# The servers are for verification: tandem runs initdb and postgres (/usr/lib/postgresql/17/bin), and
# mariadb-install-db and mariadbd (mariadb-server-core: the server without mariadb-server's service scripts, Galera
# and Perl tools), in a directory of its own. initdb and postgres refuse to run as a user without a name, and a pod
# may run as a user ID the image does not list: libnss-wrapper lets tandem give it one (a passwd file of its own,
# in the server's directory). Debian's packages would make and start a cluster of their own:
# createcluster.d tells pg_createcluster not to make one, and policy-rc.d keeps the maintainer scripts from
# starting anything while they run. ssl-cert's snakeoil key and certificate, made at install for a cluster's TLS,
# are no use here, and the key would be the same private key in every copy of the image: they are removed.
# PostgreSQL's JIT (LLVM and Z3, about 150 MiB, a hard dependency of postgresql-17) is never used by the throwaway
# server (jit=off): its files are removed, and the packages stay registered, so apt works in an image built on this
# one; every server and client program is then checked to find all its libraries.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/tandem.conf; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends ca-certificates postgresql-client mariadb-client \
      postgresql-17 mariadb-server-core libnss-wrapper; \
    if [ -n "$MONGODB_TOOLS_VERSION" ]; then \
      apt-get install -y -qq --no-install-recommends curl; \
      case "${TARGETARCH:-amd64}" in amd64) arch=x86_64 ;; arm64) arch=arm64 ;; *) echo "no MongoDB tools for $TARGETARCH" >&2; exit 1 ;; esac; \
      name="mongodb-database-tools-debian12-$arch-$MONGODB_TOOLS_VERSION"; \
      curl -fsSL "https://fastdl.mongodb.org/tools/db/$name.tgz" | tar -xz -C /usr/local/bin --strip-components=2 "$name/bin/mongodump" "$name/bin/mongorestore"; \
      apt-get purge -y -qq --auto-remove curl; \
    fi; \
    rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem; \
    find /etc/ssl/certs -lname ssl-cert-snakeoil.pem -delete; \
    rm -rf /usr/lib/postgresql/17/lib/llvmjit.so /usr/lib/postgresql/17/lib/llvmjit_types.bc /usr/lib/postgresql/17/lib/bitcode \
      /usr/lib/*/libLLVM*.so* /usr/lib/*/libz3.so*; \
    if ldd /usr/lib/postgresql/17/bin/* /usr/lib/postgresql/17/lib/*.so /usr/sbin/mariadbd /usr/bin/mariadb /usr/bin/mariadb-dump 2>/dev/null | grep 'not found'; then \
      echo "a program of the image lacks a library" >&2; exit 1; \
    fi; \
    made=$(find /etc/postgresql /var/lib/postgresql -mindepth 1 2>/dev/null || true); \
    if [ -n "$made" ]; then echo "a PostgreSQL cluster was made at install: $made" >&2; exit 1; fi; \
    groupadd --gid 65532 nonroot; \
    useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot; \
    pg_dump --version; mariadb-dump --version; /usr/lib/postgresql/17/bin/postgres --version; mariadbd --version
ARG VERSION=devel
LABEL org.opencontainers.image.title=tandem-backup \
      org.opencontainers.image.description="tandem's backup sidecar: tandem backup, restore and verify with the database clients and servers" \
      org.opencontainers.image.version=${VERSION}
COPY --from=build /out/tandem /usr/local/bin/tandem
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/tandem"]
CMD ["backup"]

# The default target is the webhook image. It comes last because the legacy builder (docker build without
# BuildKit) builds every stage up to its target: the webhook stage is before the backup stage, so building the
# webhook needs neither the Debian base nor the database clients.
FROM webhook AS default
