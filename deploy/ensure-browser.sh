#!/usr/bin/env bash
# Makes sure the headless browser the status-page test drives is installed:
# Debian's Chromium (/usr/bin/chromium) and its driver (/usr/bin/chromedriver).
#
#   1. both are there                          -> nothing to do
#   2. root (or passwordless sudo) and apt-get -> apt-get install chromium chromium-driver
#   3. otherwise                               -> say what is missing, exit 1
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

if command -v apt-get >/dev/null 2>&1 && { is_root || can_sudo; }; then
	log "browser: installing chromium and chromium-driver with apt-get…"
	if as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2 &&
		[[ -z $(missing) ]]; then
		log "browser: installed ($("$CHROMIUM" --version 2>/dev/null || echo chromium))"
		exit 0
	fi
	log "browser: apt-get install chromium chromium-driver failed"
fi

log "browser: MISSING — the status-page test needs:"
missing | sed 's/^/  /' >&2
log "  install them:  sudo apt-get install -y chromium chromium-driver"
exit 1
