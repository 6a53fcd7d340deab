#!/usr/bin/env bash
# Jaeger v2 (trace storage in memory + query API) as a native process.
#
#   jaeger.sh install   build the binary into $BIN_DIR once (Go module proxy; first run: minutes)
#   jaeger.sh start     install if needed, start with jaeger/jaeger.yaml, wait until healthy
#   jaeger.sh stop      stop the process
#   jaeger.sh status    running/starting/stopped, pid, ports; exits 0 running and answering,
#                        1 running but not answering, 3 stopped
#
# The same binary is an OpenTelemetry Collector distribution; components/collector.sh runs a
# second instance of it as the collector (jaeger/collector.yaml).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=jaeger
JAEGER_VERSION="${JAEGER_VERSION:-v1.75.0}"
JAEGER_BIN="$BIN_DIR/jaeger-$JAEGER_VERSION"
JAEGER_CONFIG="$LOCAL_DIR/jaeger/jaeger.yaml"
JAEGER_PKG="github.com/jaegertracing/jaeger/cmd/jaeger"

# Go is often installed outside the default PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH="$PATH:/usr/local/go/bin"
fi

jaeger_healthy() {
  http_ok "http://127.0.0.1:$JAEGER_HEALTH_PORT/status" &&
    http_ok "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services"
}

cmd_install() {
  if [ -x "$JAEGER_BIN" ]; then
    step "$NAME" "binary $JAEGER_VERSION cached"
    return 0
  fi
  need_cmd go "$NAME"
  local src="$CACHE_DIR/src/jaeger-$JAEGER_VERSION" log
  log=$(log_file "$NAME-build")
  : >"$log"
  step "$NAME" "building $JAEGER_VERSION (first run: minutes)"
  # Build outside the clone: the wrapper's go.sum is generated there, so the repo stays clean.
  mkdir -p "$src"
  cp "$LOCAL_DIR/jaeger/build/go.mod" "$LOCAL_DIR/jaeger/build/tools.go" "$src/"
  sed -i "s#^require github.com/jaegertracing/jaeger .*#require github.com/jaegertracing/jaeger $JAEGER_VERSION#" "$src/go.mod"
  (
    cd "$src"
    go mod tidy
    go build -trimpath \
      -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION" \
      -o "$JAEGER_BIN.tmp" "$JAEGER_PKG"
  ) >>"$log" 2>&1 || die "$NAME" "build failed (log: $log)" "$log"
  mv -f "$JAEGER_BIN.tmp" "$JAEGER_BIN"
  step "$NAME" "built ($(du -h "$JAEGER_BIN" | cut -f1))"
}

cmd_start() {
  cmd_install
  local log; log=$(log_file "$NAME")
  if pid_alive "$NAME"; then
    wait_until "$NAME" 60 "$log" jaeger_healthy
    step "$NAME" "already running (pid $(cat "$(pid_file "$NAME")"))"
    return 0
  fi
  local p
  for p in "$JAEGER_OTLP_GRPC_PORT" "$JAEGER_OTLP_HTTP_PORT" "$JAEGER_QUERY_PORT" \
    "$JAEGER_QUERY_GRPC_PORT" "$JAEGER_HEALTH_PORT" "$JAEGER_TELEMETRY_PORT"; do
    port_open "$p" && die "$NAME" "port 127.0.0.1:$p is already in use by another process"
  done
  step "$NAME" "starting"
  start_bg "$NAME" "$JAEGER_BIN" --config "$JAEGER_CONFIG"
  wait_until "$NAME" 60 "$log" jaeger_healthy
  step "$NAME" "healthy (query http://127.0.0.1:$JAEGER_QUERY_PORT)"
}

cmd_stop() { component_stop "$NAME"; }

cmd_status() {
  component_status "$NAME" "$BIND_HOST:$JAEGER_QUERY_PORT (otlp grpc $JAEGER_OTLP_GRPC_PORT http $JAEGER_OTLP_HTTP_PORT, health $JAEGER_HEALTH_PORT)" \
    jaeger_healthy
}

component_main "$@"
