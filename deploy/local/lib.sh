# shellcheck shell=bash
# Shared helpers for the native local stack. Sourced by stack.sh and components/*.sh; never run.
#
# Layout:
#   $CACHE_DIR  (~/.cache/integr8scode)   downloads, Go module/build caches, built binaries: kept
#                                          across clones so a second run rebuilds nothing.
#   $RUN_DIR    (<repo>/.local)            per-clone state: logs/, pids/, data/, config/.
set -euo pipefail

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$LOCAL_DIR/../.." && pwd)"
CACHE_DIR="${INTEGR8SCODE_CACHE:-$HOME/.cache/integr8scode}"
RUN_DIR="${INTEGR8SCODE_RUN:-$ROOT_DIR/.local}"
LOG_DIR="$RUN_DIR/logs"
PID_DIR="$RUN_DIR/pids"
DATA_DIR="$RUN_DIR/data"
CONF_DIR="$RUN_DIR/config"
BIN_DIR="$CACHE_DIR/bin"
mkdir -p "$CACHE_DIR" "$BIN_DIR" "$LOG_DIR" "$PID_DIR" "$DATA_DIR" "$CONF_DIR"

# Go caches live outside the clone so warm runs reuse modules and compiled packages.
export GOMODCACHE="${GOMODCACHE:-$CACHE_DIR/go/mod}"
export GOCACHE="${GOCACHE:-$CACHE_DIR/go/build}"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Ports (all bound to 127.0.0.1). Override through the environment.
export BIND_HOST=127.0.0.1
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export MONGO_PORT="${MONGO_PORT:-27017}"
export REDIS_PORT="${REDIS_PORT:-6379}"
export POSTGRES_PORT="${POSTGRES_PORT:-5433}"
export OTLP_GRPC_PORT="${OTLP_GRPC_PORT:-4317}"
export OTLP_HTTP_PORT="${OTLP_HTTP_PORT:-4318}"
export COLLECTOR_HEALTH_PORT="${COLLECTOR_HEALTH_PORT:-13133}"
export COLLECTOR_PROM_PORT="${COLLECTOR_PROM_PORT:-8889}"
export COLLECTOR_TELEMETRY_PORT="${COLLECTOR_TELEMETRY_PORT:-8888}"
export JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-14317}"
export JAEGER_OTLP_HTTP_PORT="${JAEGER_OTLP_HTTP_PORT:-14318}"
export JAEGER_QUERY_PORT="${JAEGER_QUERY_PORT:-16686}"
export JAEGER_QUERY_GRPC_PORT="${JAEGER_QUERY_GRPC_PORT:-16685}"
export JAEGER_HEALTH_PORT="${JAEGER_HEALTH_PORT:-13134}"
export JAEGER_TELEMETRY_PORT="${JAEGER_TELEMETRY_PORT:-8887}"

# The Mongo-wire server's storage for this clone: FERRETDB_BACKEND when set (and then remembered
# in .local/config), else what this clone last ran with, else sqlite for a clone that already
# holds SQLite databases from before PostgreSQL was the default (its data stays in reach), else
# postgresql (docs/decisions.md, "FerretDB indexes, and the PostgreSQL backend"). Remembered so that a
# component restarted later (the fault tests restart FerretDB) keeps the clone's data, not the
# other backend's.
ferretdb_backend() {
  local file="$CONF_DIR/ferretdb_backend"
  if [ -n "${FERRETDB_BACKEND:-}" ]; then
    echo "$FERRETDB_BACKEND"
  elif [ -s "$file" ]; then
    cat "$file"
  elif compgen -G "$DATA_DIR/ferretdb/*.sqlite" >/dev/null; then
    echo sqlite
  else
    echo postgresql
  fi
}

_T0="${_T0:-$(date +%s)}"
export _T0

# step COMPONENT MESSAGE: one progress line with the time since the command started.
step() {
  local now; now=$(date +%s)
  printf '  %-14s %-42s %4ss\n' "$1" "$2" "$((now - _T0))"
}

# die COMPONENT MESSAGE [LOGFILE]: a clear error naming the component, with the log's tail.
die() {
  printf '\nERROR [%s] %s\n' "$1" "$2" >&2
  if [ -n "${3:-}" ] && [ -f "$3" ]; then
    printf -- '--- last lines of %s ---\n' "$3" >&2
    tail -n 30 "$3" >&2
  fi
  exit 1
}

# wait_until COMPONENT TIMEOUT_S LOGFILE CMD...: poll CMD until it succeeds or the deadline passes.
wait_until() {
  local name=$1 timeout=$2 log=$3; shift 3
  local deadline=$(( $(date +%s) + timeout ))
  while ! "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name"; then
      die "$name" "process exited before becoming healthy" "$log"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "$name" "not healthy after ${timeout}s" "$log"
    fi
    sleep 0.2
  done
}

pid_file() { printf '%s/%s.pid' "$PID_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

# pid_alive NAME: true while the process runs (a killed but not yet reaped zombie is dead).
pid_alive() {
  local f pid state
  f=$(pid_file "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != "Z" ]
}

# start_bg NAME CMD...: start CMD detached in its own session, logging to logs/NAME.log.
start_bg() {
  local name=$1; shift
  local log; log=$(log_file "$name")
  : >"$log"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# stop_bg NAME [TIMEOUT_S]: SIGTERM the process group, wait, then SIGKILL what is left.
stop_bg() {
  local name=$1 timeout=${2:-20} f pid
  f=$(pid_file "$name")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( $(date +%s) + timeout ))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

# component_status NAME WHERE READY_CMD...: one status line for an infrastructure component.
# Returns 0 when running and READY_CMD answers, 1 when running but not answering, 3 when stopped.
component_status() {
  local name=$1 where=$2 pid; shift 2
  if ! pid_alive "$name"; then
    printf '%-10s %-10s %-12s %s\n' "$name" stopped "-" "$where"
    return 3
  fi
  pid=$(cat "$(pid_file "$name")")
  if "$@" >/dev/null 2>&1; then
    printf '%-10s %-10s %-12s %s\n' "$name" running "pid $pid" "$where"
  else
    printf '%-10s %-10s %-12s %s\n' "$name" starting "pid $pid" "$where (not answering yet)"
    return 1
  fi
}

# component_stop NAME [TIMEOUT_S]: stop a component (see stop_bg), saying so when it was running.
component_stop() {
  if pid_alive "$1"; then
    step "$1" "stopping"
  fi
  stop_bg "$1" "${2:-20}"
}

# component_main "$@": a component script's command line; install|start|stop|status call the
# script's cmd_install, cmd_start, cmd_stop, cmd_status (status's exit code is the script's).
component_main() {
  case "${1:-}" in
    install | start | stop | status) "cmd_$1" ;;
    *)
      echo "usage: $0 install|start|stop|status" >&2
      exit 2
      ;;
  esac
}

# port_open PORT: true when something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_ok URL: true on a 2xx answer.
http_ok() { curl -fsS -m 2 -o /dev/null "$1"; }

# need_cmd CMD COMPONENT: fail clearly when a tool is missing.
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$2" "'$1' is not installed (run: make install)"; }

# apt_install PKG...: install Debian packages that are missing (root or sudo).
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOG_DIR/apt.log" 2>&1
}
