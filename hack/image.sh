#!/usr/bin/env bash
# Builds tandem's images from the project's own Dockerfile on a machine that reaches no container registry, and
# checks them: the base images come in as build arguments, made here from what the machine has (Go from
# /usr/local/go or `go env GOROOT`, a static busybox from Debian for the build stage's shell, an empty non-root
# base, and for the backup image a Debian 13 root made with debootstrap), and the build steps reach the Go
# module proxy and Debian's mirror through the host's network. The checks: the image runs tandem as its non-root
# user; the backup image also has the database clients on PATH, and the PostgreSQL and MariaDB servers that
# verification starts do start for that user, also with a read-only root filesystem and /tmp a tmpfs, as in the
# pod, and as a user ID the image does not list (PostgreSQL's programs named through nss_wrapper, as tandem does).
#
#   hack/image.sh [TAG]                 # the webhook image; default tandem:dev; prints the tag
#   hack/image.sh --backup [TAG]        # the backup sidecar image; default tandem-backup:dev; prints the tag
#
# Needs: a Docker engine that answers, Go, busybox-static and (for --backup) debootstrap, both installed with
# apt-get when missing, as root. The local backup image has no MongoDB tools (they come from MongoDB's download
# site, which this machine does not reach). With public registries, plain `docker build .` (and
# `docker build --target backup .`) use the Dockerfile's public defaults instead.
set -euo pipefail

target=webhook
if [[ ${1:-} == --backup ]]; then
	target=backup
	shift
fi
tag=${1:-tandem$([[ $target == backup ]] && echo -backup):dev}
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib/apt.sh
source "$root/hack/lib/apt.sh"
# shellcheck source=hack/versions.sh
source "$root/hack/versions.sh"

docker info >/dev/null 2>&1 || die "no Docker engine answers"
goroot=$(go env GOROOT)
goversion=$(go env GOVERSION)
go_image=tandem-local/go:${goversion#go}
base_image=tandem-local/static:nonroot
debian_suite=$BACKUP_DEBIAN_SUITE
debian_image=tandem-local/debian:$debian_suite

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
	apt_install busybox-static # the build stage's /bin/sh
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

if [[ $target == backup ]] && ! docker image inspect "$debian_image" >/dev/null 2>&1; then
	command -v debootstrap >/dev/null || apt_install debootstrap
	mirror=$(sed -n 's/^URIs: *//p; s/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\) .*/\2/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1) || true
	mirror=${mirror:-http://deb.debian.org/debian}
	log "making $debian_image with debootstrap from $mirror (about a minute)"
	mkdir -p "$work/debian"
	debootstrap --variant=minbase "$debian_suite" "$work/debian" "$mirror" >&2 || die "debootstrap $debian_suite failed"
	rm -rf "$work/debian"/var/lib/apt/lists/* "$work/debian"/var/cache/apt/*.bin
	tar -C "$work/debian" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$debian_image" >/dev/null
fi

version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo devel)
log "building $tag ($target, $version) from $root/Dockerfile"
# The legacy builder: BuildKit refuses --network host without an entitlement plain docker build cannot grant.
DOCKER_BUILDKIT=0 docker build --network host -q -t "$tag" --target "$target" \
	--build-arg GO_IMAGE="$go_image" --build-arg BASE_IMAGE="$base_image" \
	--build-arg BACKUP_BASE_IMAGE="$debian_image" --build-arg MONGODB_TOOLS_VERSION= \
	--build-arg GOPROXY="$(go env GOPROXY)" --build-arg VERSION="$version" \
	"$root" 2>&1 >/dev/null | grep -v -e DEPRECATED -e 'legacy builder' -e BuildKit -e '^ *environment-variable' >&2 || true
docker image inspect "$tag" >/dev/null 2>&1 || die "docker build failed"

# The image runs tandem as the non-root user it declares.
user=$(docker image inspect -f '{{.Config.User}}' "$tag")
[[ $user == 65532:65532 ]] || die "image user is '$user', want 65532:65532"
out=$(docker run --rm "$tag" version) || die "tandem version failed in the image"
[[ $out == "tandem $version "* ]] || die "tandem version printed '$out', want version $version"
# scratch_servers, run by /bin/sh in the backup image, starts a PostgreSQL and a MariaDB server the way tandem's
# verification does (initdb + postgres on a socket; mariadb-install-db + mariadbd --skip-networking
# --skip-grant-tables), asks each for its version through its client and stops it; it prints the server's log
# and fails, saying which step, when one does not start. As a user without a name, PostgreSQL's programs get one
# from nss_wrapper, as tandem gives it to them.
scratch_servers=$(cat <<'EOF'
set -u
d=$(mktemp -d /tmp/tandem-check.XXXXXX) || exit 1
fail() { echo "$1"; [ -f "$2" ] && tail -n 20 "$2"; exit 1; }
wait_for() { i=0; until "$@" >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 100 ] || return 1; sleep 0.2; done; }
pg=/usr/lib/postgresql/17/bin
pgenv=
if ! id -un >/dev/null 2>&1; then
	lib=$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n 1)
	[ -n "$lib" ] || fail "uid $(id -u) has no name and there is no libnss_wrapper.so to give it one" /dev/null
	echo "tandem:x:$(id -u):$(id -g):tandem:$d:/usr/sbin/nologin" >"$d/passwd"
	echo "tandem:x:$(id -g):" >"$d/group"
	pgenv="LD_PRELOAD=$lib NSS_WRAPPER_PASSWD=$d/passwd NSS_WRAPPER_GROUP=$d/group"
	echo "uid $(id -u) is $(env $pgenv id -un) through nss_wrapper"
fi
env $pgenv "$pg/initdb" --pgdata "$d/pg" --username postgres --auth trust --no-sync --no-instructions >"$d/initdb.log" 2>&1 ||
	fail "initdb failed as uid $(id -u):" "$d/initdb.log"
env $pgenv "$pg/postgres" -D "$d/pg" -k "$d" -c listen_addresses= >"$d/pg.log" 2>&1 &
pid=$!
wait_for env $pgenv "$pg/pg_isready" -q -h "$d" || fail "postgres did not accept connections on its socket in 20 s:" "$d/pg.log"
env $pgenv psql -X -h "$d" -U postgres -d postgres -tAc 'SHOW server_version' || fail "psql could not query the server:" "$d/pg.log"
kill -INT $pid && wait $pid || fail "postgres did not stop cleanly:" "$d/pg.log"
mariadb-install-db --no-defaults --datadir="$d/m" --auth-root-authentication-method=normal --skip-test-db \
	--skip-name-resolve >"$d/install.log" 2>&1 || fail "mariadb-install-db failed as uid $(id -u):" "$d/install.log"
mariadbd --no-defaults --datadir="$d/m" --socket="$d/m.sock" --pid-file="$d/m.pid" --log-error="$d/m.log" \
	--skip-networking --skip-grant-tables --skip-log-bin --innodb-buffer-pool-size=32M &
pid=$!
q() { mariadb --no-defaults --protocol=SOCKET --socket="$d/m.sock" --user=root --batch --skip-column-names -e "$1"; }
wait_for q 'SELECT 1' || fail "mariadbd did not accept connections on its socket in 20 s:" "$d/m.log"
q 'SELECT VERSION()' || fail "mariadb could not query the server:" "$d/m.log"
kill -TERM $pid && wait $pid || fail "mariadbd did not stop cleanly:" "$d/m.log"
rm -rf "$d"
EOF
)

if [[ $target == backup ]]; then
	# The clients the sidecar runs are on PATH for the non-root user, and tandem finds them.
	clients=$(docker run --rm --entrypoint /bin/sh "$tag" -c 'pg_dump --version && psql --version && mariadb-dump --version && mariadb --version') ||
		die "the database clients do not run in $tag"
	log "clients: $(echo "$clients" | tr '\n' ';')"
	out="$out; $(docker run --rm --entrypoint /bin/sh "$tag" -c 'id -u; command -v tandem' | tr '\n' ' ')"
	# The servers tandem verifies backups with start for the non-root user, as tandem starts them: a data
	# directory under /tmp, a Unix socket, no TCP. Once as built; once as in the pod, where the root filesystem
	# is read-only and /tmp an emptyDir; and once as a user ID the image does not list, as a platform that
	# assigns them (OpenShift) runs the pod.
	for mode in plain read-only unnamed-uid; do
		flags=()
		case $mode in
		read-only) flags=(--read-only --tmpfs /tmp) ;;
		unnamed-uid) flags=(--read-only --tmpfs /tmp --user 1000680000:0) ;;
		esac
		servers=$(docker run --rm "${flags[@]}" --entrypoint /bin/sh "$tag" -c "$scratch_servers" 2>&1) ||
			die "the throwaway servers tandem verifies backups with do not start in $tag (docker run ${flags[*]}):
$servers"
		log "servers ($mode): $(echo "$servers" | tr '\n' ';')"
	done
fi
log "ok: $out, user $user"
echo "$tag"
