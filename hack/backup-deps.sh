#!/usr/bin/env bash
# Provides what the backup sidecar's tests (go test ./backup/...) run against, and prints where it is, one
# KEY=VALUE per line on standard output:
#
#   PG_BINDIR=/usr/lib/postgresql/15/bin     initdb, postgres, pg_dump, psql (Debian's postgresql)
#   MARIADB_BINDIR=/usr/bin                  mariadb-install-db, mariadb, mariadb-dump (Debian's mariadb-server)
#   MARIADBD=/usr/sbin/mariadbd              the MariaDB server
#   VERSITYGW=/.../versitygw                 an S3-compatible server (versitygw, posix backend), built from the
#                                            Go module proxy at the pinned version below
#
# Idempotent: Debian packages are installed (apt-get, as root) only when missing, and versitygw is built once
# into ${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/tools. Needs Go on PATH; on a machine without the
# packages it needs root and Debian's apt (otherwise it fails, naming what is missing). Progress goes to stderr.
# Works from any directory. The tests run it themselves; `make` can run it first to show the cost separately.
set -euo pipefail

# --- pinned versions ---------------------------------------------------------
VERSITYGW_VERSION=v1.8.0            # github.com/versity/versitygw
# -----------------------------------------------------------------------------

cache=${TANDEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/tools
log() { printf 'backup-deps: %s\n' "$*" >&2; }
die() { printf 'backup-deps: error: %s\n' "$*" >&2; exit 1; }
cleanup=()
trap 'if ((${#cleanup[@]})); then rm -rf "${cleanup[@]}"; fi' EXIT

pg_bindir() {
	local d
	# Debian keeps the server binaries out of PATH, one directory per major version; take the newest.
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [[ -n $d && -x $d/initdb && -x $d/postgres && -x $d/pg_dump && -x $d/psql ]]; then echo "$d"; fi
}
mariadb_ok() {
	command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null &&
		command -v mariadb-dump >/dev/null && [[ -x /usr/sbin/mariadbd ]]
}

# `hack/backup-deps.sh versitygw`: only the S3 server (hack/e2e-kind.sh needs nothing else).
only_versitygw=false
[[ ${1:-} == versitygw ]] && only_versitygw=true

missing=()
if ! $only_versitygw; then
	[[ -n $(pg_bindir) ]] || missing+=(postgresql)
	mariadb_ok || missing+=(mariadb-server mariadb-client)
fi
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		die "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
	fi
	log "installing ${missing[*]} with apt-get (about 30 s)"
	export DEBIAN_FRONTEND=noninteractive
	# The packages' maintainer scripts would start system-wide servers; the tests start their own.
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
		cleanup+=("$policy")
	fi
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 ||
		die "apt-get install ${missing[*]} failed"
	[[ -n $(pg_bindir) ]] || die "postgresql installed, but no /usr/lib/postgresql/*/bin holds initdb, postgres, pg_dump and psql"
	mariadb_ok || die "mariadb-server installed, but mariadb-install-db, mariadb, mariadb-dump or /usr/sbin/mariadbd is missing"
fi

vgw=$cache/versitygw-$VERSITYGW_VERSION/versitygw
if [[ ! -x $vgw ]]; then
	command -v go >/dev/null || die "Go is not on PATH (needed to build versitygw)"
	log "building versitygw $VERSITYGW_VERSION from the Go module proxy (about 2 minutes the first time)"
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.versitygw-XXXXXX")
	cleanup+=("$tmp")
	(cd "$tmp" && GOBIN=$tmp CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2 ||
		die "building versitygw $VERSITYGW_VERSION failed"
	mkdir -p "$(dirname "$vgw")"
	mv "$tmp/versitygw" "$vgw"
fi

if $only_versitygw; then
	echo "VERSITYGW=$vgw"
	exit 0
fi
echo "PG_BINDIR=$(pg_bindir)"
echo "MARIADB_BINDIR=$(dirname "$(command -v mariadb-install-db)")"
echo "MARIADBD=/usr/sbin/mariadbd"
echo "VERSITYGW=$vgw"
