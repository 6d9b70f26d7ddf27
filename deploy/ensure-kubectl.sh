#!/usr/bin/env bash
# Makes sure kubectl is installed: the Kubernetes manifests' tests render every overlay
# of deploy/kubernetes with `kubectl kustomize` (tests/unit/test_kubernetes_manifests.py).
#
#   1. kubectl is on PATH                      -> nothing to do
#   2. root (or passwordless sudo) and apt-get -> apt-get install --no-install-recommends
#                                                 kubernetes-client, unless that would
#                                                 upgrade a package already installed
#   3. otherwise                               -> say what is missing, exit 1
#
# Debian's kubernetes-client is kubectl 1.20, whose built-in kustomize is v2.0.3: the
# kustomizations are written to render under it as well as under current kubectl
# (deploy/kubernetes/README.md). kubectl before 1.14 has no kustomize at all.
#
# Idempotent, and instant when kubectl is installed. Used by tests/run.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh"

has_kustomize() { kubectl kustomize --help >/dev/null 2>&1; }

if command -v kubectl >/dev/null 2>&1; then
	if has_kustomize; then
		log "kubectl: $(command -v kubectl) is installed"
		exit 0
	fi
	log "kubectl: $(command -v kubectl) has no \`kubectl kustomize\` (kubectl 1.14 added it):"
	log "  install kubectl 1.20 or newer first on PATH"
	exit 1
fi

if apt_ensure kubectl kubectl kubernetes-client && has_kustomize; then
	log "kubectl: installed ($(command -v kubectl))"
	exit 0
fi

log "kubectl: MISSING — the Kubernetes manifests' tests render deploy/kubernetes with it."
log "  install it:  sudo apt-get install -y --no-install-recommends kubernetes-client"
log "  (or any kubectl 1.20 or newer on PATH: https://kubernetes.io/docs/tasks/tools/)"
exit 1
