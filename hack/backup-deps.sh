#!/usr/bin/env bash
# Provides what the backup sidecar's tests (go test ./backup/...) run against, and prints where it is, one
# KEY=VALUE per line on standard output:
#
#   PG_BINDIR=/usr/lib/postgresql/15/bin     initdb, postgres, pg_dump, psql (Debian's postgresql)
#   MARIADB_BINDIR=/usr/bin                  mariadb-install-db, mariadb, mariadb-dump (Debian's mariadb-server)
#   MARIADBD=/usr/sbin/mariadbd              the MariaDB server (and libnss-wrapper, installed, for a server run
#                                            as a user without a name)
#   VERSITYGW=/.../versitygw                 an S3-compatible server (versitygw, posix backend), built from the
#                                            Go module proxy by hack/tools.sh
#
# Idempotent and safe to run concurrently: Debian packages are installed (apt-get, as root, under one lock:
# hack/lib/apt.sh) only when missing, and versitygw is built once
# into the tools cache (hack/tools.sh). Needs Go on PATH; on a machine without the
# packages it needs root and Debian's apt (otherwise it fails, naming what is missing). Progress goes to stderr.
# Works from any directory. The tests run it themselves; `make` can run it first to show the cost separately.
set -euo pipefail

log() { printf 'backup-deps: %s\n' "$*" >&2; }
die() { printf 'backup-deps: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib/apt.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/apt.sh"

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

missing=()
[[ -n $(pg_bindir) ]] || missing+=(postgresql)
mariadb_ok || missing+=(mariadb-server mariadb-client)
# nss_wrapper: tandem verify's throwaway PostgreSQL as a user with no name (tested as such when run as root).
compgen -G '/usr/lib/*/libnss_wrapper.so' >/dev/null || missing+=(libnss-wrapper)
if ((${#missing[@]})); then
	apt_install "${missing[@]}"
	[[ -n $(pg_bindir) ]] || die "postgresql installed, but no /usr/lib/postgresql/*/bin holds initdb, postgres, pg_dump and psql"
	mariadb_ok || die "mariadb-server installed, but mariadb-install-db, mariadb, mariadb-dump or /usr/sbin/mariadbd is missing"
fi

vgw=$("$(dirname -- "${BASH_SOURCE[0]}")/tools.sh" versitygw)
echo "PG_BINDIR=$(pg_bindir)"
echo "MARIADB_BINDIR=$(dirname "$(command -v mariadb-install-db)")"
echo "MARIADBD=/usr/sbin/mariadbd"
echo "VERSITYGW=$vgw"
