#!/usr/bin/env bash
# Checks that the Dockerfile's build stage copies every directory of the repository that the tandem binary is
# built from (a COPY line and a .dockerignore exception each), so that a new top-level package cannot break the
# image build while every other check passes. `make lint` runs it. Needs bash, Go and grep; works from any
# directory.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
module=$(go list -m)
missing=()
while read -r dir; do
	grep -qx "COPY $dir/ $dir/" Dockerfile || missing+=("Dockerfile: COPY $dir/ $dir/")
	grep -qx "!$dir/" .dockerignore || missing+=(".dockerignore: !$dir/")
done < <(go list -deps ./cmd/tandem | sed -n "s|^$module/\([^/]*\).*|\1|p" | sort -u)
if [ ${#missing[@]} -gt 0 ]; then
	echo "verify-dockerfile: the tandem binary is built from directories the image build does not copy; add:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi
echo "verify-dockerfile: ok: the Dockerfile copies every directory cmd/tandem is built from"
