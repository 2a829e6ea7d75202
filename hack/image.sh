#!/usr/bin/env bash
# Builds tandem's image from the project's own Dockerfile on a machine that reaches no container registry, and
# checks it: the base images come in as build arguments, made here from what the machine has (Go from
# /usr/local/go or `go env GOROOT`, a static busybox from Debian for the build stage's shell, an empty non-root
# base), and the build stage reaches the Go module proxy through the host's network.
#
#   hack/image.sh [TAG]      # default tandem:dev; prints the tag
#
# Needs: a Docker engine that answers, Go, and busybox-static (installed with apt-get when missing, as root).
# With public registries, plain `docker build .` uses the Dockerfile's public defaults instead.
set -euo pipefail

tag=${1:-tandem:dev}
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers"
goroot=$(go env GOROOT)
goversion=$(go env GOVERSION)
go_image=tandem-local/go:${goversion#go}
base_image=tandem-local/static:nonroot

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
	log "making $base_image: an empty root with a nonroot user (65532)"
	mkdir -p "$work/static/etc" "$work/static/tmp"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$work/static/etc/passwd"
	printf 'root:x:0:\nnonroot:x:65532:\n' >"$work/static/etc/group"
	chmod 1777 "$work/static/tmp"
	tar -C "$work/static" -c . | docker import --change 'USER 65532:65532' - "$base_image" >/dev/null
fi

if ! docker image inspect "$go_image" >/dev/null 2>&1; then
	busybox=/bin/busybox
	if ! dpkg -s busybox-static >/dev/null 2>&1; then
		log "installing Debian's busybox-static for the build stage's /bin/sh"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static; } >&2 ||
			die "could not install busybox-static"
	fi
	log "making $go_image from $goroot and $busybox"
	mkdir -p "$work/go/bin" "$work/go/usr/local" "$work/go/etc/ssl/certs" "$work/go/tmp" "$work/go/root"
	cp "$busybox" "$work/go/bin/busybox"
	for cmd in sh mkdir rm cp ls cat; do ln -s busybox "$work/go/bin/$cmd"; done
	cp /etc/ssl/certs/ca-certificates.crt "$work/go/etc/ssl/certs/"
	chmod 1777 "$work/go/tmp"
	tar -C "$work/go" -cf "$work/go.tar" .
	tar -C "$(dirname "$goroot")" -rf "$work/go.tar" --transform "s,^$(basename "$goroot"),usr/local/go," "$(basename "$goroot")"
	docker import --change 'ENV PATH=/usr/local/go/bin:/bin' --change 'ENV HOME=/root' "$work/go.tar" "$go_image" >/dev/null
fi

version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo devel)
log "building $tag ($version) from $root/Dockerfile"
# The legacy builder: BuildKit refuses --network host without an entitlement plain docker build cannot grant.
DOCKER_BUILDKIT=0 docker build --network host -q -t "$tag" \
	--build-arg GO_IMAGE="$go_image" --build-arg BASE_IMAGE="$base_image" \
	--build-arg GOPROXY="$(go env GOPROXY)" --build-arg VERSION="$version" \
	"$root" 2>&1 >/dev/null | grep -v -e DEPRECATED -e 'legacy builder' -e BuildKit -e '^ *environment-variable' >&2 || true
docker image inspect "$tag" >/dev/null 2>&1 || die "docker build failed"

# The image runs tandem as the non-root user it declares.
user=$(docker image inspect -f '{{.Config.User}}' "$tag")
[[ $user == 65532:65532 ]] || die "image user is '$user', want 65532:65532"
out=$(docker run --rm "$tag" version) || die "tandem version failed in the image"
[[ $out == "tandem $version "* ]] || die "tandem version printed '$out', want version $version"
log "ok: $out, user $user"
echo "$tag"
