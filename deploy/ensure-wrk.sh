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

source "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh"

if command -v wrk >/dev/null 2>&1; then
	log "wrk: $(command -v wrk) is installed"
	exit 0
fi

if apt_ensure wrk wrk wrk; then
	log "wrk: installed ($(command -v wrk))"
	exit 0
fi

log "wrk: MISSING — the benchmarks (python -m tests.benchmarks) and their smoke test need it."
log "  install it:  sudo apt-get install -y --no-install-recommends wrk"
log "  (or build it from https://github.com/wg/wrk and put it on PATH)"
exit 1
