#!/usr/bin/env bash
# Makes (or finds) test images from Debian packages, with no registry, and
# prints their tags, one per line, in the order asked:
#
#   hack/kind/images.sh busybox    # tandem-local/busybox:<version>-<hash>
#   hack/kind/images.sh postgres   # tandem-local/postgres:15-<hash>
#
# busybox: Debian's busybox-static on an empty rootfs (CMD sh); 2 MiB.
# postgres: debootstrap minbase + postgresql-15, runs as the postgres user
#   (numeric uid, so runAsNonRoot works), PGDATA=/var/lib/postgresql/data/pgdata
#   (mount a volume at /var/lib/postgresql/data: an emptyDir is root-owned, so
#   the cluster lives in a subdirectory initdb can own), an entrypoint that
#   runs initdb when PGDATA is empty (superuser POSTGRES_USER, default
#   postgres, password POSTGRES_PASSWORD, required; optional POSTGRES_DB) and
#   starts postgres on all addresses with scram-sha-256 password auth for TCP.
# Load them into a cluster with `kind load docker-image <tag> --name <cluster>`
# and use imagePullPolicy: Never (or IfNotPresent: the tags are never :latest).
# Each image is also saved under $KIND_CACHE/images, so after a `docker rmi`
# a run costs a `docker load`.
set -euo pipefail
KIND_LOG_PREFIX=kind-images
# shellcheck source=hack/kind/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() { die "usage: $0 busybox|postgres..."; }
(($# > 0)) || usage
need docker "a Docker engine is needed"
image_dir=$KIND_CACHE/images
mkdir -p -- "$image_dir"
tmp_dirs=()
cleanup() {
	if ((${#tmp_dirs[@]} > 0)); then rm -rf -- "${tmp_dirs[@]}"; fi
}
trap cleanup EXIT

# have_or_load TAG TAR: the image is in Docker (loading it from TAR if needed).
have_or_load() {
	image_exists "$1" && return 0
	[[ -f $2 ]] || return 1
	log "loading $1 from $2"
	docker load -i "$2" >&2 || die "docker load -i $2 failed"
	image_exists "$1"
}

# save TAG TAR: docker save, and drop the tars of superseded versions of
# the same image (TAR is <name>-<key>.tar).
save() {
	docker save -o "$2.tmp" "$1" || die "docker save $1 failed"
	mv -f -- "$2.tmp" "$2"
	prune_superseded "$2"
}

busybox_image() {
	local version key tag tar tmp a
	apt_update
	version=$(apt-cache policy busybox-static 2>/dev/null | sed -n 's/^[[:space:]]*Candidate:[[:space:]]*//p')
	[[ -n $version && $version != "(none)" ]] ||
		die "apt knows no busybox-static package (run apt-get update; a $DEBIAN_SUITE mirror is needed)"
	key=$(hash_inputs "$(declare -f busybox_image)" "$version")
	# 1:1.35.0-4+deb12u1+b1 -> 1.35.0
	a=${version#*:}
	tag=$LOCAL_REPO/busybox:${a%%-*}-$key
	tar=$image_dir/busybox-$key.tar
	if have_or_load "$tag" "$tar"; then
		printf '%s\n' "$tag"
		return
	fi
	tmp=$(mktemp -d)
	tmp_dirs+=("$tmp")
	chmod 0755 "$tmp" # apt-get download fetches as the _apt user
	log "making $tag from busybox-static $version"
	(cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "busybox-static=$version") >&2 || die "apt-get download busybox-static=$version failed"
	dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/deb" || die "dpkg-deb -x of busybox-static failed"
	mkdir -p -- "$tmp/root/bin" "$tmp/root/tmp" "$tmp/root/etc" "$tmp/root/root"
	chmod 1777 "$tmp/root/tmp"
	cp -- "$tmp/deb/bin/busybox" "$tmp/root/bin/busybox"
	for a in $("$tmp/root/bin/busybox" --list); do
		[[ $a == busybox ]] || ln -sf busybox "$tmp/root/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/root/etc/group"
	tar --numeric-owner --owner=0 --group=0 -C "$tmp/root" -c . |
		docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$tag" >/dev/null ||
		die "docker import of $tag failed"
	save "$tag" "$tar"
	printf '%s\n' "$tag"
}

postgres_image() {
	local key tag tar tmp rootfs uid gid
	key=$(hash_inputs "$(declare -f postgres_image)" "$(declare -f debootstrap_tar docker_import)" \
		"$DEBIAN_SUITE" "$POSTGRES_PACKAGES" "mirror=$(debian_mirror)")
	tag=$LOCAL_REPO/postgres:$POSTGRES_MAJOR-$key
	tar=$image_dir/postgres-$POSTGRES_MAJOR-$key.tar
	if have_or_load "$tag" "$tar"; then
		printf '%s\n' "$tag"
		return
	fi
	need_root "making the postgres image"
	rootfs=$(debootstrap_tar postgres "$POSTGRES_PACKAGES")
	tmp=$(mktemp -d "$image_dir/.postgres.XXXXXX")
	tmp_dirs+=("$tmp")
	log "making $tag"
	tar --numeric-owner --xattrs -C "$tmp" -xf "$rootfs"
	[[ -x $tmp/usr/lib/postgresql/$POSTGRES_MAJOR/bin/postgres ]] ||
		die "the postgres rootfs has no /usr/lib/postgresql/$POSTGRES_MAJOR/bin/postgres"
	uid=$(awk -F: '$1 == "postgres" {print $3}' "$tmp/etc/passwd")
	gid=$(awk -F: '$1 == "postgres" {print $4}' "$tmp/etc/passwd")
	[[ -n $uid && -n $gid ]] || die "the postgres rootfs has no postgres user"
	# No Debian-style cluster: the entrypoint makes one in PGDATA.
	rm -rf -- "$tmp/etc/postgresql/$POSTGRES_MAJOR/main" "$tmp/var/lib/postgresql/$POSTGRES_MAJOR/main"
	install -d -m 0755 -o "$uid" -g "$gid" "$tmp/var/lib/postgresql/data"
	install -d -m 2775 -o "$uid" -g "$gid" "$tmp/run/postgresql"
	cat >"$tmp/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/bash
# tandem-local/postgres entrypoint: initdb on first start, then postgres.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
export PGDATA
if [[ $# -eq 0 || ${1:-} == postgres ]]; then
	[[ $# -eq 0 ]] || shift
	if [[ ! -s $PGDATA/PG_VERSION ]]; then
		if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
			echo "postgres: POSTGRES_PASSWORD must be set to initialise an empty PGDATA ($PGDATA)" >&2
			exit 1
		fi
		user=${POSTGRES_USER:-postgres}
		mkdir -p "$PGDATA"
		chmod 0700 "$PGDATA"
		pwfile=$(mktemp)
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
			--encoding=UTF8 --locale=C.UTF-8 >&2
		rm -f "$pwfile"
		printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
		if [[ -n ${POSTGRES_DB:-} && $POSTGRES_DB != postgres ]]; then
			postgres --single -jE -D "$PGDATA" postgres <<<"CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$user\";" >/dev/null
		fi
		echo "postgres: initialised $PGDATA" >&2
	fi
	exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"
fi
exec "$@"
ENTRYPOINT
	chmod 0755 "$tmp/usr/local/bin/docker-entrypoint.sh"
	tar --numeric-owner --xattrs -C "$tmp" -c . | docker_import "$tag" SIGINT \
		--change "ENV PATH=/usr/lib/postgresql/$POSTGRES_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change 'ENV PGDATA=/var/lib/postgresql/data/pgdata' \
		--change 'ENV LANG=C.UTF-8' \
		--change "USER $uid:$gid" \
		--change 'EXPOSE 5432' \
		--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		--change 'CMD ["postgres"]'
	save "$tag" "$tar"
	log "made $tag"
	printf '%s\n' "$tag"
}

for what in "$@"; do
	case $what in
	busybox) busybox_image ;;
	postgres) postgres_image ;;
	*) usage ;;
	esac
done
