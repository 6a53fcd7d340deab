#!/usr/bin/env bash
# OpenTelemetry Collector as a native process: the Jaeger v2 binary (an OTel Collector
# distribution) run with jaeger/collector.yaml. Receives OTLP from the services, tail-samples
# traces and forwards them to the Jaeger instance; exposes OTLP metrics for Prometheus.
#
#   collector.sh install   build the shared Jaeger binary if missing (see jaeger.sh)
#   collector.sh start     install if needed, start, wait until healthy
#   collector.sh stop      stop the process
#   collector.sh status    running/starting/stopped, pid, ports; exits 0 running and answering,
#                           1 running but not answering, 3 stopped
#
# Starting does not require Jaeger to be up: the otlp exporter retries until it is.
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=collector
JAEGER_VERSION="${JAEGER_VERSION:-v1.75.0}"
export JAEGER_VERSION
JAEGER_BIN="$BIN_DIR/jaeger-$JAEGER_VERSION"
COLLECTOR_CONFIG="$LOCAL_DIR/jaeger/collector.yaml"
export COLLECTOR_SAMPLING_PERCENT="${COLLECTOR_SAMPLING_PERCENT:-100}"
export COLLECTOR_SLOW_TRACE_MS="${COLLECTOR_SLOW_TRACE_MS:-500}"
export COLLECTOR_DECISION_WAIT="${COLLECTOR_DECISION_WAIT:-2s}"

collector_healthy() { http_ok "http://127.0.0.1:$COLLECTOR_HEALTH_PORT/status"; }

cmd_install() {
  # One binary serves both Jaeger and the collector; jaeger.sh owns the build.
  bash "$LOCAL_DIR/components/jaeger.sh" install
}

cmd_start() {
  cmd_install
  local log; log=$(log_file "$NAME")
  if pid_alive "$NAME"; then
    wait_until "$NAME" 60 "$log" collector_healthy
    step "$NAME" "already running (pid $(cat "$(pid_file "$NAME")"))"
    return 0
  fi
  local p
  for p in "$OTLP_GRPC_PORT" "$OTLP_HTTP_PORT" "$COLLECTOR_HEALTH_PORT" "$COLLECTOR_PROM_PORT" \
    "$COLLECTOR_TELEMETRY_PORT"; do
    port_open "$p" && die "$NAME" "port 127.0.0.1:$p is already in use by another process"
  done
  step "$NAME" "starting"
  start_bg "$NAME" "$JAEGER_BIN" --config "$COLLECTOR_CONFIG"
  wait_until "$NAME" 60 "$log" collector_healthy
  step "$NAME" "healthy (otlp grpc :$OTLP_GRPC_PORT http :$OTLP_HTTP_PORT)"
}

cmd_stop() { component_stop "$NAME"; }

cmd_status() {
  component_status "$NAME" "$BIND_HOST:$OTLP_GRPC_PORT (otlp http $OTLP_HTTP_PORT, metrics $COLLECTOR_PROM_PORT, health $COLLECTOR_HEALTH_PORT)" \
    collector_healthy
}

component_main "$@"
