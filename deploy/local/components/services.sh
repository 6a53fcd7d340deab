#!/usr/bin/env bash
# The five Python services as native processes from the workspace virtualenv.
#
#   services.sh start [NAME...]   start (all by default) and wait until live and ready
#   services.sh stop  [NAME...]   SIGTERM, wait for a clean exit
#   services.sh status
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../service_env.sh
source "$LOCAL_DIR/service_env.sh"

PY="$ROOT_DIR/.venv/bin/python"

selected() {
  local want=("$@") entry
  for entry in "${SERVICES[@]}"; do
    if [ ${#want[@]} -eq 0 ] || [[ " ${want[*]} " == *" ${entry%%:*} "* ]]; then
      echo "$entry"
    fi
  done
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
