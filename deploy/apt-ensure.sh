#!/usr/bin/env bash
# Sourced by the deploy/ensure-*.sh scripts: the one apt-get guard they share.
#
#   source deploy/apt-ensure.sh
#   apt_ensure LABEL "COMMAND…" PACKAGE…
#
# With root (or passwordless sudo) and apt-get, installs PACKAGE… without recommended
# packages (they pulled in and upgraded systemd once), unless that would upgrade a
# package already installed. Returns 0 when every COMMAND (a name on PATH or a path)
# is there afterwards; otherwise 1, having said why on stderr. What is missing and
# how to install it by hand is the caller's to say: only it knows what needs the tool.

log() { printf '%s\n' "$*" >&2; }

is_root() { [[ $(id -u) -eq 0 ]]; }
can_sudo() { command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; }

as_root() {
	if is_root; then
		"$@"
	else
		sudo -n "$@"
	fi
}

# True when every argument is a command on PATH or an executable path.
all_found() {
	local name
	for name in "$@"; do
		command -v "$name" >/dev/null 2>&1 || return 1
	done
}

# Installed packages the install would upgrade ("Inst name [old version] …" in a dry run).
apt_upgrades() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -s --no-install-recommends \
		"$@" 2>/dev/null | awk '$1 == "Inst" && $3 ~ /^\[/ { print $2 }'
}

apt_ensure() {
	local label=$1 commands=$2
	shift 2
	local packages=("$@")
	local install=(apt-get install -y -qq --no-install-recommends "${packages[@]}")
	local upgrading

	if ! command -v apt-get >/dev/null 2>&1 || ! { is_root || can_sudo; }; then
		return 1
	fi
	log "$label: installing ${packages[*]} with apt-get (no recommends)…"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; then
		return 1
	fi
	upgrading=$(apt_upgrades "${packages[@]}")
	if [[ -n $upgrading ]]; then
		# Unquoted: one word per package.
		log "$label: not installing: it would upgrade installed packages:" $upgrading
		log "  upgrade them yourself if that is fine, then run this again"
		return 1
	fi
	# shellcheck disable=SC2086  # the commands are one word each
	if as_root env DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2 && all_found $commands; then
		return 0
	fi
	log "$label: ${install[*]} failed"
	return 1
}
