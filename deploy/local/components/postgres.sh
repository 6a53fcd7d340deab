#!/usr/bin/env bash
# PostgreSQL from Debian's packages, the storage of FerretDB's PostgreSQL backend
# (FERRETDB_BACKEND=postgresql), run as our own process on loopback (never the distribution's
# service). One cluster per clone under .local/data/postgres, TCP only, trust authentication on
# 127.0.0.1 (nothing else can connect), commits not waited on (synchronous_commit=off, the
# counterpart of the SQLite backend's synchronous=normal: a killed server loses nothing, a
# crashed machine the last moments).
#
# PostgreSQL refuses to run as root: as root, the cluster is owned by and run as the `postgres`
# account the package creates (setpriv, no extra process); otherwise as the current user.
#
# Usage: postgres.sh install|start|stop|status
#   status exits 0 when running and answering, 1 when running but not answering, 3 when stopped.
# Environment: POSTGRES_PORT (5433), POSTGRES_START_TIMEOUT (seconds, 30).
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=postgres
PG_DATA="$DATA_DIR/postgres"
POSTGRES_START_TIMEOUT="${POSTGRES_START_TIMEOUT:-30}"
LOG="$(log_file "$NAME")"

pg_bin_dir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

# The prefix that runs a command as the cluster's owner (empty unless root).
AS_OWNER=()
[ "$(id -u)" -eq 0 ] && AS_OWNER=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --)

# The database FerretDB keeps its MongoDB databases in (one schema each).
POSTGRES_DB=ferretdb

cmd_install() {
  if [ -n "$(pg_bin_dir)" ]; then
    step "$NAME" "cached ($("$(pg_bin_dir)/postgres" --version | awk '{print $3}'))"
    return 0
  fi
  step "$NAME" "installing (apt: postgresql)"
  # Keep the package's maintainer scripts from starting a cluster of their own.
  local policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  apt_install postgresql || die "$NAME" "apt-get install postgresql failed"
  [ "$policy_created" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ -n "$(pg_bin_dir)" ] || die "$NAME" "postgresql is still missing after apt-get install"
}

postgres_ready() { "$(pg_bin_dir)/pg_isready" -q -h "$BIND_HOST" -p "$POSTGRES_PORT"; }

init_cluster() {
  [ -f "$PG_DATA/PG_VERSION" ] && return 0
  local bin; bin=$(pg_bin_dir)
  step "$NAME" "initdb $PG_DATA"
  mkdir -p "$PG_DATA"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$PG_DATA"
    "${AS_OWNER[@]}" test -x "$PG_DATA" ||
      die "$NAME" "the postgres account cannot reach $PG_DATA (a parent directory is closed to it); clone elsewhere or set INTEGR8SCODE_RUN"
  fi
  chmod 700 "$PG_DATA"
  "${AS_OWNER[@]}" "$bin/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    >>"$LOG" 2>&1 || die "$NAME" "initdb failed" "$LOG"
}

cmd_start() {
  cmd_install
  if pid_alive "$NAME"; then
    wait_until "$NAME" "$POSTGRES_START_TIMEOUT" "$LOG" postgres_ready
    step "$NAME" "already running (pid $(cat "$(pid_file "$NAME")"))"
    return 0
  fi
  port_open "$POSTGRES_PORT" &&
    die "$NAME" "port 127.0.0.1:$POSTGRES_PORT is already in use by another process (see: ss -ltnp 'sport = :$POSTGRES_PORT'); stop it or set POSTGRES_PORT"
  init_cluster
  step "$NAME" "starting on $BIND_HOST:$POSTGRES_PORT"
  local t0; t0=$(date +%s)
  start_bg "$NAME" "${AS_OWNER[@]}" "$(pg_bin_dir)/postgres" -D "$PG_DATA" \
    -c listen_addresses="$BIND_HOST" \
    -c port="$POSTGRES_PORT" \
    -c unix_socket_directories= \
    -c max_connections=200 \
    -c synchronous_commit=off \
    -c default_toast_compression=lz4 \
    -c logging_collector=off
  wait_until "$NAME" "$POSTGRES_START_TIMEOUT" "$LOG" postgres_ready
  ensure_database
  step "$NAME" "ready in $(( $(date +%s) - t0 ))s"
}

# The database is created with the C collation: FerretDB's patched PostgreSQL backend sorts
# strings in SQL (docs/decisions.md, "FerretDB: sort, limit and count in PostgreSQL"), and
# MongoDB compares strings bytewise. A database created before (C.UTF-8, the cluster's locale)
# is kept: glibc's C.UTF-8 orders by code point, which is the same order for UTF-8.
ensure_database() {
  local psql; psql=("$(pg_bin_dir)/psql" -h "$BIND_HOST" -p "$POSTGRES_PORT" -U postgres -d postgres -Atq)
  [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'")" = 1 ] && return 0
  "${psql[@]}" -c "CREATE DATABASE $POSTGRES_DB TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'" \
    >>"$LOG" 2>&1 || die "$NAME" "could not create the database $POSTGRES_DB" "$LOG"
}

cmd_stop() { component_stop "$NAME"; }

cmd_status() { component_status "$NAME" "$BIND_HOST:$POSTGRES_PORT" postgres_ready; }

component_main "$@"
