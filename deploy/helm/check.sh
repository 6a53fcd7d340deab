#!/usr/bin/env bash
# Offline check of the Helm chart (run by `make test`; idempotent, nothing touches a cluster):
#   1. Helm built from the Go module proxy, cached by version in $CACHE_DIR/bin/helm-<version>;
#   2. kubernetes-validate (PyPI, ships the Kubernetes JSON schemas) in a venv under $CACHE_DIR;
#   3. `helm lint --strict` with the default values and with values-production.yaml;
#   4. `helm template` with each value set (and with the in-chart collector and Jaeger);
#   5. every rendered manifest validated strictly against Kubernetes $K8S_VERSION;
#   6. rendering without a JWT secret must fail;
#   7. server-dryrun.sh: the chart installed into a throwaway kube-apiserver + etcd on 127.0.0.1
#      (helm install --dry-run=server, then a real install there: validation, defaulting, Pod
#      Security admission of every manifest; both processes stopped at the end). The first run
#      builds kube-apiserver from the Go module proxy (~7 min on 2 cores, ~2.4 GB RAM).
#      INTEGR8SCODE_SKIP_APISERVER=1 skips this step (and says so).
# A warm run builds and installs nothing.
#
#   bash deploy/helm/check.sh          # everything
#   bash deploy/helm/check.sh helm     # only make sure the helm binary exists; prints its path
set -euo pipefail

HELM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../local/lib.sh
source "$HELM_DIR/../local/lib.sh"

HELM_VERSION=v4.3.2
KUBERNETES_VALIDATE_VERSION=1.37.0
K8S_VERSION=1.37.0
CHART="$HELM_DIR/integr8scode"
PRODUCTION_VALUES="$HELM_DIR/values-production.yaml"
HELM="$BIN_DIR/helm-$HELM_VERSION"
VALIDATE_VENV="$CACHE_DIR/venv/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
VALIDATE="$VALIDATE_VENV/bin/kubernetes-validate"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

# What the default value set lacks on purpose: the chart refuses to render without a JWT secret
# and, outside local environments, without an admin password. Check-only values, never real ones.
DEFAULT_SET=(--set "secrets.jwtSecret=check-only-jwt-secret-0123456789abcdef" --set "secrets.adminPassword=check-only-password" --set "secrets.sealingKeys=check-only:Y2hlY2stb25seS1zZWFsaW5nLWtleS0wMTIzNDU2Nzg")

# ensure_helm: build helm once per version into $BIN_DIR (a temp GOBIN, then a rename).
ensure_helm() {
  if [ -x "$HELM" ]; then
    step helm "cached $(basename "$HELM")"
    return 0
  fi
  [ -x "$GO" ] || die helm "Go not found (looked for 'go' on PATH and /usr/local/go/bin/go)"
  step helm "building $HELM_VERSION (cold: ~4-5 min)"
  local gobin log
  gobin=$(mktemp -d "$CACHE_DIR/helm-build.XXXXXX")
  log="$LOG_DIR/helm-build.log"
  # lib.sh's GOFLAGS (-mod=mod) does not apply to `go install pkg@version`.
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

# ensure_validator: kubernetes-validate at the pinned version in its own venv (not the workspace's).
ensure_validator() {
  if [ -x "$VALIDATE" ] && [ "$("$VALIDATE" --version 2>/dev/null)" = "$KUBERNETES_VALIDATE_VERSION" ]; then
    step validate "cached kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    return 0
  fi
  need_cmd uv validate
  step validate "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  local log="$LOG_DIR/kubernetes-validate-install.log"
  rm -rf "$VALIDATE_VENV"
  mkdir -p "$(dirname "$VALIDATE_VENV")"
  if ! { uv venv -q "$VALIDATE_VENV" &&
    VIRTUAL_ENV="$VALIDATE_VENV" uv pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"; } >"$log" 2>&1; then
    rm -rf "$VALIDATE_VENV"
    die validate "could not install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "$log"
  fi
}

# lint NAME ARGS...: helm lint --strict with one value set.
lint() {
  local name=$1 out; shift
  if ! out=$("$HELM" lint --strict "$CHART" "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die lint "helm lint --strict failed with the $name values"
  fi
  step lint "$name values"
}

# render NAME ARGS...: helm template into $OUT/NAME.yaml.
render() {
  local name=$1 out; shift
  if ! out=$("$HELM" template integr8scode "$CHART" --namespace integr8scode "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die template "helm template failed with the $name values"
  fi
  printf '%s\n' "$out" >"$OUT/$name.yaml"
  step template "$name: $(grep -c '^kind:' "$OUT/$name.yaml") objects"
}

# validate NAME: every object of $OUT/NAME.yaml against the Kubernetes schemas, unknown fields refused.
validate() {
  local name=$1 out
  if ! out=$("$VALIDATE" -k "$K8S_VERSION" --strict --quiet "$OUT/$name.yaml" 2>&1); then
    printf '%s\n' "$out" >&2
    die validate "$name: manifests do not validate against Kubernetes $K8S_VERSION"
  fi
  step validate "$name: valid for Kubernetes $K8S_VERSION"
}

# refuses_without_jwt: the default values alone must not render (no JWT secret).
refuses_without_jwt() {
  local out
  if out=$("$HELM" template integr8scode "$CHART" 2>&1); then
    die template "the chart rendered without a JWT secret; it must refuse"
  fi
  case "$out" in
    *secrets.jwtSecret*) step template "refuses to render without a JWT secret" ;;
    *)
      printf '%s\n' "$out" >&2
      die template "rendering without a JWT secret failed for another reason"
      ;;
  esac
}

main() {
  case "${1:-all}" in
    helm)
      ensure_helm
      echo "$HELM"
      return 0
      ;;
    all) ;;
    *)
      echo "usage: $0 [all|helm]" >&2
      exit 2
      ;;
  esac
  ensure_helm
  ensure_validator
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/integr8scode-helm.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT

  lint default "${DEFAULT_SET[@]}"
  lint production -f "$PRODUCTION_VALUES"
  lint observability "${DEFAULT_SET[@]}" --set otelCollector.enabled=true --set jaeger.enabled=true

  render default "${DEFAULT_SET[@]}"
  render production -f "$PRODUCTION_VALUES"
  render observability "${DEFAULT_SET[@]}" --set otelCollector.enabled=true --set jaeger.enabled=true
  refuses_without_jwt

  validate default
  validate production
  validate observability

  if [ "${INTEGR8SCODE_SKIP_APISERVER:-}" = 1 ]; then
    step dry-run "SKIPPED (INTEGR8SCODE_SKIP_APISERVER=1)"
  else
    HELM="$HELM" PYTHON="$VALIDATE_VENV/bin/python" \
      bash "$HELM_DIR/server-dryrun.sh" run "${DEFAULT_SET[@]}"
  fi
  step helm "chart OK"
}

main "$@"
