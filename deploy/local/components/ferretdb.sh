#!/usr/bin/env bash
# FerretDB 1.24 (MongoDB wire protocol) as a native process on loopback, on SQLite or PostgreSQL.
#
# Built from the Go module proxy through the wrapper module deploy/local/ferretdb/build (see the
# comment in its go.mod for why), with the edits of deploy/local/ferretdb/patch_source.py (index
# fixes; sort, limit and count in PostgreSQL from the Go files in deploy/local/ferretdb/overlay/),
# into $BIN_DIR/ferretdb-<version>-<patch level>. FERRETDB_BACKEND picks the storage:
#   sqlite      databases are SQLite files under .local/data/ferretdb/;
#   postgresql  schemas of the database `ferretdb` in the local PostgreSQL (components/postgres.sh,
#               which must be started first; stack.sh does).
#
# Usage: ferretdb.sh install|start|stop|status
#   status exits 0 when running and answering, 1 when running but not answering, 3 when stopped.
# Environment: MONGO_PORT (27017), FERRETDB_DEBUG_PORT (8088: metrics, /debug/livez, /debug/readyz),
#   FERRETDB_LOG_LEVEL (warn; info logs every connection), FERRETDB_VERSION (from the wrapper's go.mod),
#   FERRETDB_START_TIMEOUT (seconds, 30), FERRETDB_BACKEND (what this clone last ran with, at
#   first postgresql; remembered in .local/config/ferretdb_backend), POSTGRES_PORT (5433),
#   FERRETDB_PG_POOL (connections to PostgreSQL, 16).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=ferretdb
WRAPPER_DIR="$LOCAL_DIR/ferretdb/build"
FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION="${FERRETDB_VERSION:-$(sed -n "s|^require $FERRETDB_MODULE \(v[^ ]*\).*|\1|p" "$WRAPPER_DIR/go.mod")}"
# Built with patch_source.py's edits; a new name forces a rebuild on warm caches. "-idx4" (last:
# rebuild_stale_indexes reads it) is the index format; "-lean1" the per-command costs cut.
FERRETDB_BIN="$BIN_DIR/ferretdb-$FERRETDB_VERSION-lean1-idx4"
FERRETDB_BACKEND="$(ferretdb_backend)"
FERRETDB_PG_POOL="${FERRETDB_PG_POOL:-16}"
FERRETDB_DATA="$DATA_DIR/ferretdb"
FERRETDB_DEBUG_PORT="${FERRETDB_DEBUG_PORT:-8088}"
FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-warn}"
FERRETDB_START_TIMEOUT="${FERRETDB_START_TIMEOUT:-30}"
# Go's collector ran at every 100 % heap growth (GOGC=100): with FerretDB's small heap that was a
# fifth of its CPU (pprof under the execute bench). 400 costs ~50 MB of RSS and ~20 % less CPU
# per command (docs/decisions.md, "FerretDB's garbage collector").
FERRETDB_GOGC="${FERRETDB_GOGC:-400}"
LOG="$(log_file "$NAME")"

cmd_install() {
  if [ -x "$FERRETDB_BIN" ]; then
    step "$NAME" "cached ($FERRETDB_VERSION)"
    return 0
  fi
  need_cmd go "$NAME"
  step "$NAME" "building $FERRETDB_VERSION (Go, minutes cold)"
  local src="$CACHE_DIR/src/ferretdb-$FERRETDB_VERSION" build_log="$LOG_DIR/ferretdb-build.log" mod_dir
  : >"$build_log"
  # FerretDB's module source, downloaded (or found) in the module cache.
  mod_dir=$(cd "$CACHE_DIR" && go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" 2>>"$build_log" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then
    die "$NAME" "could not download $FERRETDB_MODULE@$FERRETDB_VERSION" "$build_log"
  fi
  # The wrapper next to a writable copy of that source, plus the version file the release
  # process generates (build/version embeds it; without it the binary panics at start).
  rm -rf "$src"
  mkdir -p "$src"
  cp "$WRAPPER_DIR/go.mod" "$src/go.mod"
  cp -R "$mod_dir" "$src/FerretDB"
  chmod -R u+w "$src/FerretDB"
  echo "$FERRETDB_VERSION" >"$src/FerretDB/build/version/version.txt"
  # The index fixes (docs/decisions.md, "FerretDB indexes"); refuses a source they don't fit.
  python3 "$LOCAL_DIR/ferretdb/patch_source.py" "$src/FerretDB" >>"$build_log" 2>&1 ||
    die "$NAME" "FerretDB $FERRETDB_VERSION: the index patches no longer apply" "$build_log"
  if ! (
    cd "$src"
    go mod edit -require="$FERRETDB_MODULE@$FERRETDB_VERSION"
    go mod tidy
    CGO_ENABLED=0 go build -trimpath -o "$FERRETDB_BIN.tmp" "$FERRETDB_MODULE/cmd/ferretdb"
  ) >>"$build_log" 2>&1; then
    rm -f "$FERRETDB_BIN.tmp"
    die "$NAME" "building FerretDB $FERRETDB_VERSION failed" "$build_log"
  fi
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
}

# Ready when the listener answers a MongoDB `ping` (OP_MSG {ping: 1, $db: "admin"}) with ok: 1.
ferretdb_ready() {
  python3 - "$MONGO_PORT" <<'PY'
import socket, struct, sys

elements = (b"\x10ping\x00" + struct.pack("<i", 1)
            + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00")
doc = struct.pack("<i", len(elements) + 5) + elements + b"\x00"
body = struct.pack("<I", 0) + b"\x00" + doc  # flagBits, section kind 0, the command
msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body  # header: opCode OP_MSG
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.settimeout(2)
    s.sendall(msg)
    buf = b""
    while len(buf) < 4 or len(buf) < struct.unpack("<i", buf[:4])[0]:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(1)
        buf += chunk
ok = (b"\x01ok\x00" + struct.pack("<d", 1.0), b"\x10ok\x00" + struct.pack("<i", 1))
sys.exit(0 if any(o in buf for o in ok) else 1)
PY
}

# port_free PORT VAR: die when another process listens there.
port_free() {
  port_open "$1" && die "$NAME" "port 127.0.0.1:$1 is already in use by another process (see: ss -ltnp 'sport = :$1'); stop it or set $2"
  return 0
}

cmd_start() {
  cmd_install
  if pid_alive "$NAME"; then
    wait_until "$NAME" "$FERRETDB_START_TIMEOUT" "$LOG" ferretdb_ready
    step "$NAME" "already running (pid $(cat "$(pid_file "$NAME")"))"
    return 0
  fi
  need_cmd python3 "$NAME"
  port_free "$MONGO_PORT" MONGO_PORT
  port_free "$FERRETDB_DEBUG_PORT" FERRETDB_DEBUG_PORT
  mkdir -p "$FERRETDB_DATA"
  step "$NAME" "starting on $BIND_HOST:$MONGO_PORT ($FERRETDB_BACKEND)"
  local t0; t0=$(date +%s)
  # Flags win over FERRETDB_* variables a developer may have set for other purposes.
  local storage
  case "$FERRETDB_BACKEND" in
    sqlite) storage=(--handler=sqlite --sqlite-url="file:$FERRETDB_DATA/?_pragma=synchronous(normal)") ;;
    postgresql)
      port_open "$POSTGRES_PORT" ||
        die "$NAME" "FERRETDB_BACKEND=postgresql but nothing answers on 127.0.0.1:$POSTGRES_PORT (start components/postgres.sh first)"
      storage=(--handler=postgresql
        --postgresql-url="postgres://postgres@$BIND_HOST:$POSTGRES_PORT/ferretdb?pool_max_conns=$FERRETDB_PG_POOL")
      ;;
    *) die "$NAME" "FERRETDB_BACKEND must be sqlite or postgresql, not '$FERRETDB_BACKEND'" ;;
  esac
  echo "$FERRETDB_BACKEND" >"$CONF_DIR/ferretdb_backend"
  GOGC="$FERRETDB_GOGC" start_bg "$NAME" "$FERRETDB_BIN" \
    --listen-addr="$BIND_HOST:$MONGO_PORT" \
    "${storage[@]}" \
    --state-dir="$FERRETDB_DATA" \
    --debug-addr="$BIND_HOST:$FERRETDB_DEBUG_PORT" \
    --telemetry=disable \
    --log-level="$FERRETDB_LOG_LEVEL"
  wait_until "$NAME" "$FERRETDB_START_TIMEOUT" "$LOG" ferretdb_ready
  rebuild_stale_indexes
  step "$NAME" "ready in $(( $(date +%s) - t0 ))s"
}

# An index keeps the PostgreSQL form of the build that created it (docs/decisions.md, "FerretDB:
# sort, limit and count in PostgreSQL"): when the binary's suffix changed since this data dir
# last ran, drop the secondary indexes before the services start and recreate theirs.
rebuild_stale_indexes() {
  local format="${FERRETDB_BIN##*-}" format_file="$CONF_DIR/ferretdb_index_format"
  [ "$(cat "$format_file" 2>/dev/null)" = "$format" ] && return 0
  if [ "$FERRETDB_BACKEND" = postgresql ] && [ -x "$ROOT_DIR/.venv/bin/python" ]; then
    step "$NAME" "index format $format: dropping the secondary indexes of older builds"
    "$ROOT_DIR/.venv/bin/python" "$LOCAL_DIR/ferretdb/drop_secondary_indexes.py" "$MONGO_PORT" >>"$LOG" 2>&1 ||
      die "$NAME" "could not drop the secondary indexes of an older FerretDB build" "$LOG"
  fi
  echo "$format" >"$format_file"
}

cmd_stop() { component_stop "$NAME"; }

cmd_status() { component_status "$NAME" "$BIND_HOST:$MONGO_PORT (debug $FERRETDB_DEBUG_PORT)" ferretdb_ready; }

component_main "$@"
