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

source "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh"

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

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

if apt_ensure browser "$CHROMIUM $CHROMEDRIVER" chromium chromium-driver; then
	log "browser: installed ($("$CHROMIUM" --version 2>/dev/null || echo chromium))"
	exit 0
fi

log "browser: MISSING — the status-page test needs:"
missing | sed 's/^/  /' >&2
log "  install them:  sudo apt-get install -y --no-install-recommends chromium chromium-driver"
exit 1
