#!/usr/bin/env bash
# Server-side dry run of the Helm chart against a real kube-apiserver (called by check.sh).
#
#   server-dryrun.sh install   build kube-apiserver and unpack etcd into the cache, once per version
#   server-dryrun.sh run [--set K=V ...]
#                              install if needed, start etcd + kube-apiserver on 127.0.0.1, then
#                              for the default values (+ these --set flags, check.sh passes the
#                              check-only secrets) and values-production.yaml:
#                                1. `helm install --dry-run=server`;
#                                2. `helm install` for real into the throwaway API server;
#                                3. every object read back: nothing the chart sets dropped or changed;
#                                4. each Deployment's pod created as a Pod (dryRun=All) in namespaces
#                                   enforcing restricted/baseline/privileged: its strictest level;
#                              then stop both processes.
#
# Why step 2: Helm v4's --dry-run=server only renders against the live cluster (its version,
# API list, lookups), maps each kind through discovery and checks that nothing already exists; it
# sends no object to the API server, so no validation, defaulting or admission runs. A real install
# into a cluster thrown away afterwards is what makes the API server judge every manifest.
#
# Nothing is installed system-wide and nothing tracked is written (build logs: .local/logs/):
#   - kube-apiserver: a wrapper module (apiserver/go.mod + tools.go) copied to
#     $CACHE_DIR/src/kube-apiserver-<version>, its replaces generated from k8s.io/kubernetes's go.mod,
#     `go mod tidy` + `go build` there; binary cached as $BIN_DIR/kube-apiserver-<version>
#     (measured here, 2 cores: ~7 min with an empty Go build cache and the modules already
#     downloaded, ~2.4 GB RAM for the Go tools; the stripped binary is 114 MB);
#   - etcd: Debian's etcd-server package, `apt-get download` + `dpkg-deb -x` into
#     $CACHE_DIR/etcd-<package version> (no system install);
#   - certificates, kubeconfig, etcd data: a temp dir removed on exit; etcd and the API server
#     are stopped on exit (trap), whatever happens.
# There is no kubelet, controller-manager or scheduler: objects are validated, defaulted and
# admitted (PodSecurity included), never run.
set -euo pipefail

HELM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../local/lib.sh
source "$HELM_DIR/../local/lib.sh"

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
APISERVER="$BIN_DIR/kube-apiserver-$KUBERNETES_VERSION"
APISERVER_SRC="$CACHE_DIR/src/kube-apiserver-$KUBERNETES_VERSION"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
ETCD_PACKAGE=etcd-server
ETCD_PORT="${INTEGR8SCODE_DRYRUN_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${INTEGR8SCODE_DRYRUN_ETCD_PEER_PORT:-23800}"
APISERVER_PORT="${INTEGR8SCODE_DRYRUN_APISERVER_PORT:-26443}"
READY_TIMEOUT_S=120
CHART="$HELM_DIR/integr8scode"
PRODUCTION_VALUES="$HELM_DIR/values-production.yaml"
CLUSTER_PY="$HELM_DIR/apiserver/cluster.py"
# check.sh passes HELM (its cached binary) and PYTHON (one with PyYAML).
HELM="${HELM:-}"
PYTHON="${PYTHON:-python3}"
RELEASE=integr8scode

# timed COMPONENT MESSAGE CMD...: run CMD, then one progress line with how long it took.
timed() {
  local name=$1 msg=$2 t0; shift 2
  t0=$(date +%s%N)
  "$@"
  step "$name" "$msg ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

# ensure_apiserver: build kube-apiserver once per version (see the header).
ensure_apiserver() {
  if [ -x "$APISERVER" ]; then
    step apiserver "cached $(basename "$APISERVER")"
    return 0
  fi
  [ -x "$GO" ] || die apiserver "Go not found (looked for 'go' on PATH and /usr/local/go/bin/go)"
  local log="$LOG_DIR/kube-apiserver-build.log" k8s_mod staging minor
  : >"$log"
  step apiserver "building $KUBERNETES_VERSION (cold: ~7 min, 2.4 GB)"
  # Staging modules are tagged v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>.
  staging="v0.${KUBERNETES_VERSION#v1.}"
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  "$GO" mod download "k8s.io/kubernetes@$KUBERNETES_VERSION" >>"$log" 2>&1 ||
    die apiserver "go mod download k8s.io/kubernetes@$KUBERNETES_VERSION failed" "$log"
  k8s_mod="$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
  [ -f "$k8s_mod" ] || die apiserver "missing $k8s_mod after go mod download"
  rm -rf "$APISERVER_SRC"
  mkdir -p "$APISERVER_SRC"
  cp "$HELM_DIR/apiserver/go.mod" "$HELM_DIR/apiserver/tools.go" "$APISERVER_SRC/"
  sed -i "s#^require k8s.io/kubernetes .*#require k8s.io/kubernetes $KUBERNETES_VERSION#" "$APISERVER_SRC/go.mod"
  # One replace per `k8s.io/X => ./staging/src/k8s.io/X` line of kubernetes's own go.mod.
  {
    echo
    echo "// Generated from k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod by server-dryrun.sh."
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$k8s_mod"
    echo ")"
  } >>"$APISERVER_SRC/go.mod"
  grep -q "k8s.io/apiserver => k8s.io/apiserver $staging" "$APISERVER_SRC/go.mod" ||
    die apiserver "could not generate the staging replaces from $k8s_mod"
  (
    cd "$APISERVER_SRC"
    "$GO" mod tidy
    CGO_ENABLED=0 "$GO" build -trimpath \
      -ldflags "-s -w \
        -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 \
        -X k8s.io/component-base/version.gitMinor=$minor \
        -X k8s.io/component-base/version.gitTreeState=clean \
        -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION \
        -X k8s.io/client-go/pkg/version.gitMajor=1 \
        -X k8s.io/client-go/pkg/version.gitMinor=$minor" \
      -o "$APISERVER.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  ) >>"$log" 2>&1 || { rm -f "$APISERVER.tmp"; die apiserver "build failed (log: $log)" "$log"; }
  mv -f "$APISERVER.tmp" "$APISERVER"
  step apiserver "built ($(du -h "$APISERVER" | cut -f1))"
}

# ensure_etcd: Debian's etcd-server unpacked into the cache (no system install), once per version.
ensure_etcd() {
  local version dir
  version=$(apt-cache policy "$ETCD_PACKAGE" 2>/dev/null | sed -n 's/^ *Candidate: //p')
  [ -n "$version" ] && [ "$version" != "(none)" ] ||
    die etcd "no $ETCD_PACKAGE package candidate (apt-get update first)"
  dir="$CACHE_DIR/etcd-${version//[^A-Za-z0-9.]/_}"
  ETCD="$dir/usr/bin/etcd"
  if [ -x "$ETCD" ]; then
    step etcd "cached $ETCD_PACKAGE $version"
    return 0
  fi
  local tmp log="$LOG_DIR/etcd-download.log"
  tmp=$(mktemp -d "$CACHE_DIR/etcd-download.XXXXXX")
  # As root, apt drops to the _apt user for downloads, which can't write into our 0700 temp dir.
  if ! (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$ETCD_PACKAGE=$version") >"$log" 2>&1; then
    rm -rf "$tmp"
    die etcd "apt-get download $ETCD_PACKAGE=$version failed" "$log"
  fi
  rm -rf "$dir.tmp"
  dpkg-deb -x "$tmp"/"$ETCD_PACKAGE"_*.deb "$dir.tmp" || { rm -rf "$tmp" "$dir.tmp"; die etcd "dpkg-deb -x failed"; }
  rm -rf "$tmp" "$dir"
  mv "$dir.tmp" "$dir"
  step etcd "unpacked $ETCD_PACKAGE $version"
}

# --- the throwaway cluster ---------------------------------------------------------------------

ETCD_PID=""
APISERVER_PID=""
WORK=""

# stop_pid PID: SIGTERM, wait up to 20 s, then SIGKILL.
stop_pid() {
  local pid=$1 deadline
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$(( $(date +%s) + 20 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_pid "$APISERVER_PID"
  stop_pid "$ETCD_PID"
  APISERVER_PID="" ETCD_PID=""
  [ -n "$WORK" ] && rm -rf "$WORK"
  return "$rc"
}

# make_certs: a CA, the API server's serving cert (127.0.0.1), a system:masters client cert for
# helm and cluster.py, and the service-account signing key pair.
make_certs() {
  local d="$WORK/pki"
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=integr8scode-dryrun-ca" \
      -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
      -extfile server.ext -out server.crt
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=integr8scode-check" \
      -keyout client.key -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
      -extfile client.ext -out client.crt
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$WORK/openssl.log" 2>&1 || die certs "openssl failed" "$WORK/openssl.log"
  export K8S_SERVER="https://127.0.0.1:$APISERVER_PORT" K8S_CA="$d/ca.crt" \
    K8S_CERT="$d/client.crt" K8S_KEY="$d/client.key"
  KUBECONFIG="$WORK/kubeconfig"
  cat >"$KUBECONFIG" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: dryrun
    cluster: { server: "$K8S_SERVER", certificate-authority: "$d/ca.crt" }
users:
  - name: check
    user: { client-certificate: "$d/client.crt", client-key: "$d/client.key" }
contexts:
  - name: dryrun
    context: { cluster: dryrun, user: check }
current-context: dryrun
KUBECONFIG
  chmod 600 "$KUBECONFIG"
  export KUBECONFIG
}

api_ready() {
  curl -fsS -m 2 --cacert "$K8S_CA" --cert "$K8S_CERT" --key "$K8S_KEY" \
    -o /dev/null "$K8S_SERVER/readyz"
}

etcd_ready() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$ETCD_PORT/health"; }

# wait_for NAME PID LOG CMD...: poll CMD until it succeeds; fail when PID exits or on the deadline.
wait_for() {
  local name=$1 pid=$2 log=$3; shift 3
  local deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$name" "exited before becoming ready" "$log"
    [ "$(date +%s)" -lt "$deadline" ] || die "$name" "not ready after ${READY_TIMEOUT_S}s" "$log"
    sleep 0.2
  done
}

start_etcd() {
  local log="$WORK/etcd.log"
  "$ETCD" --name dryrun --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "dryrun=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn >"$log" 2>&1 </dev/null &
  ETCD_PID=$!
  wait_for etcd "$ETCD_PID" "$log" etcd_ready
}

start_apiserver() {
  local log="$WORK/kube-apiserver.log" d="$WORK/pki"
  "$APISERVER" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --cert-dir "$WORK/apiserver-certs" \
    --tls-cert-file "$d/server.crt" --tls-private-key-file "$d/server.key" \
    --client-ca-file "$d/ca.crt" \
    --service-account-key-file "$d/sa.pub" \
    --service-account-signing-key-file "$d/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode AlwaysAllow \
    --endpoint-reconciler-type none \
    --profiling=false \
    >"$log" 2>&1 </dev/null &
  APISERVER_PID=$!
  wait_for kube-apiserver "$APISERVER_PID" "$log" api_ready
}

# dry_run NAME NAMESPACE ARGS...: helm's server dry run, then a real install into the throwaway
# cluster (see the header), then the stored objects checked against the rendered ones.
dry_run() {
  local name=$1 ns=$2 out; shift 2
  if ! out=$("$HELM" install "$RELEASE" "$CHART" --namespace "$ns" --dry-run=server "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die dry-run "helm install --dry-run=server failed with the $name values"
  fi
  step dry-run "$name: --dry-run=server OK"
  if ! out=$("$HELM" install "$RELEASE" "$CHART" --namespace "$ns" "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die dry-run "the API server refused the $name values"
  fi
  # What the API server had to say (Pod Security warnings, deprecations, ...).
  printf '%s\n' "$out" | sed -n 's/.*"\(Warning: .*\)"$/    \1/p' | sed 's/\\"/"/g'
  step dry-run "$name: installed (throwaway API server)"
  "$HELM" get manifest "$RELEASE" --namespace "$ns" >"$WORK/$name.yaml"
  "$PYTHON" "$CLUSTER_PY" stored "$WORK/$name.yaml" "$ns" | sed 's/^/    /' ||
    die dry-run "$name: the API server changed or dropped fields the chart sets"
  step dry-run "$name: stored objects = rendered"
  "$PYTHON" "$CLUSTER_PY" podsecurity "$ns" ||
    die podsecurity "$name: a pod's Pod Security level is not the documented one"
  step podsecurity "$name: levels as documented"
}

cmd_run() {
  local t0
  if [ -z "$HELM" ]; then HELM=$(bash "$HELM_DIR/check.sh" helm | tail -n 1); fi
  # The --set flags that complete the default values (check.sh passes its own).
  local default_set=("$@")
  if [ "${#default_set[@]}" -eq 0 ]; then
    default_set=(--set "secrets.jwtSecret=check-only-jwt-secret-0123456789abcdef" --set "secrets.adminPassword=check-only-password" --set "secrets.sealingKeys=check-only:Y2hlY2stb25seS1zZWFsaW5nLWtleS0wMTIzNDU2Nzg")
  fi
  need_cmd openssl dry-run
  need_cmd curl dry-run
  timed apiserver "kube-apiserver ready to run" ensure_apiserver
  timed etcd "etcd ready to run" ensure_etcd
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT"; do
    port_open "$p" && die dry-run "port 127.0.0.1:$p is in use (set INTEGR8SCODE_DRYRUN_*_PORT)"
  done
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/integr8scode-dryrun.XXXXXX")
  timed certs "certificates and kubeconfig" make_certs
  timed etcd "started on 127.0.0.1:$ETCD_PORT" start_etcd
  timed apiserver "ready on 127.0.0.1:$APISERVER_PORT" start_apiserver
  step apiserver "$("$HELM" version --short 2>/dev/null) against $(curl -fsS --cacert "$K8S_CA" --cert "$K8S_CERT" --key "$K8S_KEY" "$K8S_SERVER/version" | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p')"
  # Where a Pod of each level is created (dryRun=All) to find each pod's strictest level.
  local level
  for level in restricted baseline privileged; do
    "$PYTHON" "$CLUSTER_PY" namespace "psa-$level" "pod-security.kubernetes.io/enforce=$level"
  done
  # The release's namespaces: what the coordinator needs (privileged, values.yaml SANDBOX-PRIVILEGES),
  # warnings for anything below baseline.
  "$PYTHON" "$CLUSTER_PY" namespace integr8scode \
    pod-security.kubernetes.io/enforce=privileged pod-security.kubernetes.io/warn=baseline
  "$PYTHON" "$CLUSTER_PY" namespace integr8scode-production \
    pod-security.kubernetes.io/enforce=privileged pod-security.kubernetes.io/warn=baseline
  step dry-run "namespaces + default ServiceAccounts"
  timed dry-run "default values done" dry_run default integr8scode "${default_set[@]}"
  timed dry-run "production values done" dry_run production integr8scode-production -f "$PRODUCTION_VALUES"
  t0=$(date +%s%N)
  cleanup
  trap - EXIT
  step dry-run "etcd and kube-apiserver stopped ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

main() {
  case "${1:-run}" in
    install)
      ensure_apiserver
      ensure_etcd
      ;;
    run) shift; cmd_run "$@" ;;
    *) echo "usage: $0 [install|run [--set ...]]" >&2; exit 2 ;;
  esac
}

main "$@"
