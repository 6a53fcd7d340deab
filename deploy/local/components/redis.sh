#!/usr/bin/env bash
# Redis from Debian's redis-server package, run as our own process on loopback (never the
# distribution's service). Nothing is persisted: no RDB snapshots, no AOF.
#
# Usage: redis.sh install|start|stop|status
#   status exits 0 when running and answering, 1 when running but not answering, 3 when stopped.
# Environment: REDIS_PORT (6379), REDIS_START_TIMEOUT (seconds, 15).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=redis
REDIS_DATA="$DATA_DIR/redis"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-15}"
LOG="$(log_file "$NAME")"

cmd_install() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    step "$NAME" "cached ($(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'))"
    return 0
  fi
  step "$NAME" "installing (apt: redis-server)"
  local fresh=0
  dpkg -s redis-server >/dev/null 2>&1 || fresh=1
  apt_install redis-server redis-tools
  if [ "$fresh" = 1 ]; then
    # The package enables and starts its own service on 6379 where an init system allows it.
    # We installed it only to run our own instance: stop and disable that service.
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now redis-server.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/redis-server ]; then
      $sudo /etc/init.d/redis-server stop >/dev/null 2>&1 || true
      $sudo update-rc.d redis-server disable >/dev/null 2>&1 || true
    fi
  fi
  command -v redis-server >/dev/null 2>&1 || die "$NAME" "redis-server is still missing after apt-get install"
}

redis_ready() {
  [ "$(redis-cli -h "$BIND_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

cmd_start() {
  cmd_install
  if pid_alive "$NAME"; then
    wait_until "$NAME" "$REDIS_START_TIMEOUT" "$LOG" redis_ready
    step "$NAME" "already running (pid $(cat "$(pid_file "$NAME")"))"
    return 0
  fi
  if port_open "$REDIS_PORT"; then
    die "$NAME" "port 127.0.0.1:$REDIS_PORT is already in use by a process that is not ours \
(see: ss -ltnp 'sport = :$REDIS_PORT'). If it is the distribution's Redis service, stop it \
(sudo systemctl disable --now redis-server) or pick another port: REDIS_PORT=6380."
  fi
  mkdir -p "$REDIS_DATA"
  step "$NAME" "starting on $BIND_HOST:$REDIS_PORT"
  local t0; t0=$(date +%s)
  start_bg "$NAME" redis-server \
    --bind "$BIND_HOST" \
    --port "$REDIS_PORT" \
    --dir "$REDIS_DATA" \
    --save "" \
    --appendonly no \
    --daemonize no \
    --protected-mode yes
  wait_until "$NAME" "$REDIS_START_TIMEOUT" "$LOG" redis_ready
  step "$NAME" "ready in $(( $(date +%s) - t0 ))s"
}

cmd_stop() { component_stop "$NAME"; }

cmd_status() { component_status "$NAME" "$BIND_HOST:$REDIS_PORT" redis_ready; }

component_main "$@"
