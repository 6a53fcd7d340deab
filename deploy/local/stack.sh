#!/usr/bin/env bash
# The local stack, one entry point for the Makefile.
#
#   stack.sh up       install what is missing, start infrastructure and the five services
#   stack.sh down     stop everything this clone started
#   stack.sh status   what runs
#   stack.sh ensure   `up` unless everything is already healthy (used by `make test`)
#
# With a Docker engine answering (and INTEGR8SCODE_NATIVE unset) `up`/`down`/`status` drive
# docker-compose.yml instead; otherwise every component runs as a native process on 127.0.0.1.
source "$(dirname "$0")/lib.sh"

COMPONENTS=(redis ferretdb kafka jaeger collector)
C="$LOCAL_DIR/components"

use_docker() {
  [ -z "${INTEGR8SCODE_NATIVE:-}" ] && command -v docker >/dev/null 2>&1 &&
    docker info >/dev/null 2>&1
}

# parallel LABEL CMD... [--- CMD...]: run commands concurrently, fail if any failed.
parallel() {
  local label=$1; shift
  local pids=() cmd=() rc=0 pid
  for arg in "$@" ---; do
    if [ "$arg" = "---" ]; then
      "${cmd[@]}" &
      pids+=($!)
      cmd=()
    else
      cmd+=("$arg")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  [ "$rc" -eq 0 ] || die "$label" "a component failed (see the error above; logs in $LOG_DIR)"
}

summary() {
  cat <<MSG

Integr8sCode is up ($(( $(date +%s) - _T0 ))s).
  API docs        http://127.0.0.1:${API_PORT:-8000}/docs
  Jaeger query    http://127.0.0.1:$JAEGER_QUERY_PORT/api/services   (traces: /api/traces?service=integr8scode-backend)
  Collector       OTLP grpc 127.0.0.1:$OTLP_GRPC_PORT, http 127.0.0.1:$OTLP_HTTP_PORT, metrics http://127.0.0.1:$COLLECTOR_PROM_PORT/metrics
  Logs            $LOG_DIR
  Stop            make down
MSG
}

up_native() {
  echo "Starting Integr8sCode (native processes; logs in $LOG_DIR)"
  bash "$LOCAL_DIR/prereqs.sh"
  # Installs are independent (Maven download vs Go builds): run them side by side.
  parallel install \
    bash "$C/kafka.sh" install --- bash "$C/ferretdb.sh" install --- bash "$C/jaeger.sh" install
  # FerretDB on PostgreSQL (FERRETDB_BACKEND=postgresql) needs its PostgreSQL first.
  local mongo_wire="bash '$C/ferretdb.sh' start"
  [ "$(ferretdb_backend)" = postgresql ] && mongo_wire="bash '$C/postgres.sh' start && $mongo_wire"
  parallel start \
    bash "$C/redis.sh" start --- bash -c "$mongo_wire" --- bash "$C/kafka.sh" start \
    --- bash -c "bash '$C/jaeger.sh' start && bash '$C/collector.sh' start"
  bash "$C/services.sh" start
  demo
  summary
}

# demo: one execution through the public API, printed with its trace (INTEGR8SCODE_DEMO=0 skips).
demo() {
  [ "${INTEGR8SCODE_DEMO:-1}" = "0" ] && return 0
  [ -x "$ROOT_DIR/.venv/bin/python" ] || return 0
  step demo "running print(sum(range(10)))"
  "$ROOT_DIR/.venv/bin/python" "$LOCAL_DIR/demo.py" ||
    die demo "the demo execution failed (logs in $LOG_DIR)"
}

down_native() {
  bash "$ROOT_DIR/deploy/containers/run.sh" down
  bash "$C/services.sh" stop
  local c
  for c in collector jaeger kafka ferretdb postgres redis; do bash "$C/$c.sh" stop; done
  echo "Integr8sCode stopped."
}

status_native() {
  local c
  for c in "${COMPONENTS[@]}"; do bash "$C/$c.sh" status || true; done
  [ "$(ferretdb_backend)" = postgresql ] && { bash "$C/postgres.sh" status || true; }
  bash "$C/services.sh" status
  bash "$ROOT_DIR/deploy/containers/run.sh" status
}

all_healthy() {
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && port_open "$MONGO_PORT" &&
    port_open "$KAFKA_PORT" && http_ok "http://127.0.0.1:$COLLECTOR_HEALTH_PORT/status" &&
    http_ok "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" &&
    http_ok "http://127.0.0.1:${API_PORT:-8000}/health/ready" &&
    http_ok "http://127.0.0.1:${COORDINATOR_PORT:-8001}/health/ready" &&
    http_ok "http://127.0.0.1:${DLQ_PORT:-8002}/health/ready" &&
    http_ok "http://127.0.0.1:${REPLAY_PORT:-8003}/health/ready" &&
    http_ok "http://127.0.0.1:${NOTIFIER_PORT:-8004}/health/ready"
}

compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

up() {
  if use_docker; then
    echo "Docker engine found: starting docker-compose.yml (set INTEGR8SCODE_NATIVE=1 for native)"
    (cd "$ROOT_DIR" && compose up -d --build --wait)
    demo
    summary
  else
    up_native
  fi
}

cmd=${1:-status}
case "$cmd" in
  up) up ;;
  down)
    if use_docker; then (cd "$ROOT_DIR" && compose down); else down_native; fi
    ;;
  status)
    if use_docker; then (cd "$ROOT_DIR" && compose ps); else status_native; fi
    ;;
  ensure)
    if all_healthy; then
      echo "Stack already up and healthy."
    else
      INTEGR8SCODE_DEMO="${INTEGR8SCODE_DEMO:-0}" up
    fi
    ;;
  *) die stack "unknown command '$cmd' (up|down|status|ensure)" ;;
esac
