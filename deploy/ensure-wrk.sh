#!/usr/bin/env bash
# Makes sure wrk, the HTTP load generator the benchmarks drive the gateway with
# (tests/benchmarks/bench_ingest.py, bench_e2e.py and their smoke test), is installed.
#
#   1. wrk is on PATH                          -> nothing to do
#   2. root (or passwordless sudo) and apt-get -> apt-get install --no-install-recommends wrk,
#                                                 unless that would upgrade a package
#                                                 already installed
#   3. otherwise                               -> say what is missing, exit 1
#
# Idempotent, and instant when wrk is installed. Used by tests/run.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }

if command -v wrk >/dev/null 2>&1; then
	log "wrk: $(command -v wrk) is installed"
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

PACKAGES=(wrk)
INSTALL=(apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}")

# Installed packages the install would upgrade ("Inst name [old version] …" in a dry run).
upgrades() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -s --no-install-recommends \
		"${PACKAGES[@]}" 2>/dev/null | awk '$1 == "Inst" && $3 ~ /^\[/ { print $2 }'
}

if command -v apt-get >/dev/null 2>&1 && { is_root || can_sudo; }; then
	log "wrk: installing ${PACKAGES[*]} with apt-get (no recommends)…"
	if as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; then
		upgrading=$(upgrades)
		if [[ -n $upgrading ]]; then
			log "wrk: not installing: it would upgrade installed packages:" $upgrading
			log "  upgrade them yourself if that is fine, then run this again"
		elif as_root env DEBIAN_FRONTEND=noninteractive "${INSTALL[@]}" >&2 &&
			command -v wrk >/dev/null 2>&1; then
			log "wrk: installed ($(command -v wrk))"
			exit 0
		else
			log "wrk: ${INSTALL[*]} failed"
		fi
	fi
fi

log "wrk: MISSING — the benchmarks (python -m tests.benchmarks) and their smoke test need it."
log "  install it:  sudo apt-get install -y --no-install-recommends wrk"
log "  (or build it from https://github.com/wg/wrk and put it on PATH)"
exit 1
