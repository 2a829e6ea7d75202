# shellcheck shell=bash
# apt_install PKG...: installs the Debian packages of PKG... that are not installed yet, as root, safely when
# several scripts (or test packages) ask at once. Sourced; the caller defines log and die.
#
# Every caller takes one lock file (flock) around `apt-get update` and `apt-get install`, and checks again under
# the lock, so a second caller waits for the first and then finds its packages there. apt-get also waits up to
# five minutes for dpkg's own lock, for an apt run that is not ours. Maintainer scripts do not start system-wide
# servers (a policy-rc.d that forbids it, while we install): the tests start their own.
APT_LOCK=${APT_LOCK:-/var/lock/tandem-apt.lock}

apt_missing() {
	local p
	for p in "$@"; do
		[[ $(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || printf '%s\n' "$p"
	done
}

# apt_update: refreshes apt's package lists under the lock, unless one of ours did in the last hour (a stamp
# file: apt gives the lists the mirror's modification times, not the time they were fetched).
apt_update() {
	apt_updated_recently && return 0
	[[ $(id -u) -eq 0 ]] || die "apt's package lists may be old; run apt-get update as root"
	(
		exec 8>"$APT_LOCK"
		flock 8
		apt_update_locked
	) || exit $?
}
apt_updated_recently() { [[ -n $(find "$APT_LOCK.updated" -mmin -60 2>/dev/null) ]]; }
apt_update_locked() {
	apt_updated_recently && return 0
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
	touch "$APT_LOCK.updated"
}

apt_install() {
	local missing
	mapfile -t missing < <(apt_missing "$@")
	((${#missing[@]})) || return 0
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		die "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
	fi
	command -v flock >/dev/null || die "flock (util-linux) is needed to install ${missing[*]} safely"
	(
		exec 8>"$APT_LOCK"
		flock 8
		mapfile -t missing < <(apt_missing "${missing[@]}")
		((${#missing[@]})) || exit 0
		log "installing ${missing[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt_update_locked
		local policy=/usr/sbin/policy-rc.d made_policy=false
		if [[ ! -e $policy ]]; then
			printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=true
		fi
		local rc=0
		apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
		if $made_policy; then rm -f "$policy"; fi
		((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
	) || exit $?
}
