#!/usr/bin/env bash
# Makes sure the headless browser the status-page test drives is installed:
# Debian's Chromium (/usr/bin/chromium) and its driver (/usr/bin/chromedriver).
#
#   1. both are there                          -> nothing to do
#   2. root (or passwordless sudo) and apt-get -> apt-get install --no-install-recommends
#                                                 chromium chromium-driver, unless that would
#                                                 upgrade a package already installed
#   3. otherwise                               -> say what is missing, exit 1
#
# Only what the test needs: no recommended packages (they pulled in and upgraded
# systemd once), and never an upgrade of something already installed.
#
# Idempotent, and instant when the browser is installed. Used by tests/run.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

log() { printf '%s\n' "$*" >&2; }

missing() {
	local out=()
	[[ -x $CHROMIUM ]] || out+=("$CHROMIUM (package chromium)")
	[[ -x $CHROMEDRIVER ]] || out+=("$CHROMEDRIVER (package chromium-driver)")
	if ((${#out[@]})); then printf '%s\n' "${out[@]}"; fi
}

if [[ -z $(missing) ]]; then
	log "browser: $CHROMIUM and $CHROMEDRIVER are installed"
	exit 0
fi

is_root() { [[ $(id -u) -eq 0 ]]; }
can_sudo() { command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; }

as_root() {
	if is_root; then
		"$@"
	else
		sudo -n "$@"
	fi
}

PACKAGES=(chromium chromium-driver)
INSTALL=(apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}")

# Installed packages the install would upgrade ("Inst name [old version] …" in a dry run).
upgrades() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -s --no-install-recommends \
		"${PACKAGES[@]}" 2>/dev/null | awk '$1 == "Inst" && $3 ~ /^\[/ { print $2 }'
}

if command -v apt-get >/dev/null 2>&1 && { is_root || can_sudo; }; then
	log "browser: installing ${PACKAGES[*]} with apt-get (no recommends)…"
	if as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; then
		upgrading=$(upgrades)
		if [[ -n $upgrading ]]; then
			log "browser: not installing: it would upgrade installed packages:" $upgrading
			log "  upgrade them yourself if that is fine, then run this again"
		elif as_root env DEBIAN_FRONTEND=noninteractive "${INSTALL[@]}" >&2 &&
			[[ -z $(missing) ]]; then
			log "browser: installed ($("$CHROMIUM" --version 2>/dev/null || echo chromium))"
			exit 0
		else
			log "browser: ${INSTALL[*]} failed"
		fi
	fi
fi

log "browser: MISSING — the status-page test needs:"
missing | sed 's/^/  /' >&2
log "  install them:  sudo apt-get install -y --no-install-recommends chromium chromium-driver"
exit 1
