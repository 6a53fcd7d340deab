#!/usr/bin/env bash
# Offline check of the Helm chart: build Helm from the Go module proxy (cached by version), lint
# the chart, render it with each value set and validate every manifest against the Kubernetes
# schemas. Idempotent: a warm run rebuilds and reinstalls nothing.
#
#   bash deploy/helm/check.sh            # everything
#   bash deploy/helm/check.sh helm       # only make sure the helm binary exists (prints its path)
set -euo pipefail

HELM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../local/lib.sh
source "$HELM_DIR/../local/lib.sh"

HELM_VERSION=v4.3.2
# kubernetes-validate ships the Kubernetes JSON schemas up to 1.37, so the check works offline.
KUBERNETES_VALIDATE_VERSION=1.37.0
K8S_VERSION=1.37.0
CHART="$HELM_DIR/integr8scode"
HELM="$BIN_DIR/helm-$HELM_VERSION"
VALIDATE_VENV="$CACHE_DIR/venv/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

# ensure_helm: build helm once per version into $BIN_DIR (a temp GOBIN, then an atomic rename).
ensure_helm() {
  if [ -x "$HELM" ]; then
    step helm "cached $(basename "$HELM")"
    return 0
  fi
  [ -x "$GO" ] || die helm "Go not found (looked for 'go' on PATH and /usr/local/go/bin/go)"
  step helm "building $HELM_VERSION (cold: ~5 min)"
  local gobin log
  gobin=$(mktemp -d "$CACHE_DIR/helm-build.XXXXXX")
  log="$LOG_DIR/helm-build.log"
  # GOFLAGS from lib.sh (-mod=mod) does not apply to `go install pkg@version`.
  if ! GOBIN="$gobin" GOFLAGS=-trimpath CGO_ENABLED=0 "$GO" install \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >"$log" 2>&1; then
    rm -rf "$gobin"
    die helm "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION failed" "$log"
  fi
  mv -f "$gobin/helm" "$HELM"
  rm -rf "$gobin"
  step helm "built $("$HELM" version --short)"
}

case "${1:-all}" in
  helm)
    ensure_helm
    echo "$HELM"
    exit 0
    ;;
esac
