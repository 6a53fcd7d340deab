#!/usr/bin/env bash
# The five Python services as native processes from the workspace virtualenv.
#
#   services.sh start [NAME...]   start (all by default) and wait until live and ready
#   services.sh stop  [NAME...]   SIGTERM, wait for a clean exit
#   services.sh status
source "$(dirname "$0")/../lib.sh"

# name:module:port:env-prefix
ALL=(
  "api:integr8scode_api:${API_PORT:-8000}:API"
  "coordinator:integr8scode_coordinator:${COORDINATOR_PORT:-8001}:COORDINATOR"
  "dlq-processor:integr8scode_dlq_processor:${DLQ_PORT:-8002}:DLQ"
  "event-replay:integr8scode_event_replay:${REPLAY_PORT:-8003}:REPLAY"
  "notifier:integr8scode_notifier:${NOTIFIER_PORT:-8004}:NOTIFIER"
)
PY="$ROOT_DIR/.venv/bin/python"

selected() {
  local want=("$@") entry
  for entry in "${ALL[@]}"; do
    if [ ${#want[@]} -eq 0 ] || [[ " ${want[*]} " == *" ${entry%%:*} "* ]]; then
      echo "$entry"
    fi
  done
}

# Environment every service gets locally (each still has its own defaults).
service_env() {
  export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:$OTLP_GRPC_PORT}"
  export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
  export MONGO_URL="${MONGO_URL:-mongodb://127.0.0.1:$MONGO_PORT}"
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
  export DEPLOYMENT_ENVIRONMENT="${DEPLOYMENT_ENVIRONMENT:-local}"
  # Local profile: a dead coordinator's runs are recovered within seconds, not a minute.
  export COORDINATOR_LEASE_S="${COORDINATOR_LEASE_S:-6}"
  # The tests register many users from 127.0.0.1; production keeps the stricter default.
  export API_RATE_LIMIT_AUTH_LIMIT="${API_RATE_LIMIT_AUTH_LIMIT:-10000}"
  # Local receivers (the tests' webhook and Slack stand-ins) listen on 127.0.0.1 over http.
  export NOTIFIER_ALLOW_LOOPBACK_TARGETS="${NOTIFIER_ALLOW_LOOPBACK_TARGETS:-true}"
  export API_NOTIFICATIONS_ALLOW_HTTP="${API_NOTIFICATIONS_ALLOW_HTTP:-true}"
  # Local profile: dead letters are retried within seconds (3 attempts, 1 s initial, 3 s cap),
  # so a failed message's whole retry story fits in a test; production waits 30 s … 1 h, 5 times.
  export DLQ_DEFAULT_MAX_ATTEMPTS="${DLQ_DEFAULT_MAX_ATTEMPTS:-3}"
  export DLQ_DEFAULT_INITIAL_BACKOFF_S="${DLQ_DEFAULT_INITIAL_BACKOFF_S:-1}"
  export DLQ_DEFAULT_MAX_BACKOFF_S="${DLQ_DEFAULT_MAX_BACKOFF_S:-3}"
  # The retry scheduler polls Mongo for due dead letters this often (production: 1 s).
  export DLQ_POLL_INTERVAL_S="${DLQ_POLL_INTERVAL_S:-0.5}"
  # One secret per clone, kept across restarts, so tokens survive restarting the api.
  local secret_file="$CONF_DIR/jwt_secret"
  [ -s "$secret_file" ] || (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=' >"$secret_file")
  API_JWT_SECRET="${API_JWT_SECRET:-$(cat "$secret_file")}"
  export API_JWT_SECRET
}

start() {
  [ -x "$PY" ] || die services "no virtualenv at $ROOT_DIR/.venv (run: make install)"
  service_env
  local entry name module port prefix
  local started=()
  while IFS= read -r entry; do
    IFS=: read -r name module port prefix <<<"$entry"
    if pid_alive "svc-$name"; then
      step "$name" "already running"
      continue
    fi
    step "$name" "starting on 127.0.0.1:$port"
    start_bg "svc-$name" env "${prefix}_PORT=$port" "${prefix}_HOST=127.0.0.1" "$PY" -m "$module"
    started+=("$entry")
  done < <(selected "$@")
  for entry in "${started[@]}"; do
    IFS=: read -r name module port prefix <<<"$entry"
    wait_until "svc-$name" 60 "$(log_file "svc-$name")" http_ok "http://127.0.0.1:$port/health/ready"
    step "$name" "healthy"
  done
}

stop() {
  local entry name
  while IFS= read -r entry; do
    name=${entry%%:*}
    if pid_alive "svc-$name"; then
      stop_bg "svc-$name" 20
      step "$name" "stopped"
    fi
  done < <(selected "$@")
}

status() {
  local entry name module port prefix
  while IFS= read -r entry; do
    IFS=: read -r name module port prefix <<<"$entry"
    if pid_alive "svc-$name"; then
      printf '  %-14s running  pid %-8s http://127.0.0.1:%s\n' "$name" "$(cat "$(pid_file "svc-$name")")" "$port"
    else
      printf '  %-14s stopped\n' "$name"
    fi
  done < <(selected)
}

cmd=${1:-status}; shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status ;;
  *) die services "unknown command '$cmd' (start|stop|status)" ;;
esac
