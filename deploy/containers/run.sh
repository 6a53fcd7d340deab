#!/usr/bin/env bash
# The five service images run against the native infrastructure (host network), in place of
# the native service processes: what `make test` checks the images with.
#
#   run.sh up [NAME...]   stop those native services, start their containers, wait until ready;
#                         prints each one's cold start (podman run → /health/ready answers)
#   run.sh down           stop and remove every container this clone started
#   run.sh status         the containers and their health
#
# Each container gets the local profile's environment (deploy/local/service_env.sh) and the
# restrictions the Helm chart gives its pod: read-only root filesystem with a tmpfs /tmp, no
# capabilities, no new privileges, the image's non-root user. (Podman can't schedule the images'
# HEALTHCHECK without systemd; `podman healthcheck run` runs it on demand, as the tests do.) The coordinator additionally gets
# exactly what its sandbox needs inside a container (docs/containers.md, "Sandbox privileges").
# shellcheck source=podman-env.sh
source "$(dirname "$0")/podman-env.sh"
# shellcheck source=../local/service_env.sh
source "$LOCAL_DIR/service_env.sh"

IMAGES="$ROOT_DIR/deploy/containers/images.sh"
READY_TIMEOUT_S=60

# What every container gets, matching the chart's securityContext.
BASE_OPTS=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges)
# What the coordinator adds for bubblewrap (docs/containers.md explains each one):
# - seccomp-coordinator.json instead of the runtime's default: it lets bubblewrap unshare a user
#   namespace and mount inside it, and still refuses what a sandbox never needs (module loading,
#   ptrace, bpf, io_uring, keyrings, the new mount API, clocks, reboot, ...);
# - unmask=/proc/*: the kernel lets a new pid namespace mount its own /proc only when no part of
#   the container's /proc is covered, and podman masks /proc/kcore, /proc/keys, ... by default.
SECCOMP_PROFILE="$ROOT_DIR/deploy/containers/seccomp-coordinator.json"
COORDINATOR_OPTS=(--security-opt "seccomp=$SECCOMP_PROFILE" --security-opt "unmask=/proc/*")

container_name() { printf 'integr8scode-%s' "$1"; }

entry_of() {
  local entry
  for entry in "${SERVICES[@]}"; do
    [ "${entry%%:*}" = "$1" ] && { echo "$entry"; return 0; }
  done
  die containers "no such service: $1"
}

selected() {
  local entry
  if [ $# -gt 0 ]; then
    for entry in "$@"; do entry_of "$entry"; done
  else
    printf '%s\n' "${SERVICES[@]}"
  fi
}

running() { [ "$(podman container inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

now_ms() { date +%s%3N; }

cmd_up() {
  need_cmd podman containers
  service_env
  local entry name module port prefix ref cname env_args=() v
  for v in "${SERVICE_ENV_NAMES[@]}"; do env_args+=(-e "$v"); done
  local entries=()
  mapfile -t entries < <(selected "$@")
  # The native processes of these services go first: the containers take over their ports.
  local names=()
  for entry in "${entries[@]}"; do names+=("${entry%%:*}"); done
  bash "$LOCAL_DIR/components/services.sh" stop "${names[@]}" >/dev/null
  # One at a time, each waited for: its cold start (run → /health/ready answers) is its own.
  declare -A ready
  local t0 deadline
  for entry in "${entries[@]}"; do
    IFS=: read -r name module port prefix <<<"$entry"
    ref=$(bash "$IMAGES" list | grep "/$name:")
    podman image exists "$ref" || die "$name" "image $ref is not built (run: make images)"
    cname=$(container_name "$name")
    podman rm --force --ignore "$cname" >/dev/null 2>&1 || true
    local opts=("${BASE_OPTS[@]}")
    [ "$name" = coordinator ] && opts+=("${COORDINATOR_OPTS[@]}")
    step "$name" "container from $ref"
    t0=$(now_ms)
    podman run --detach --name "$cname" "${opts[@]}" \
      --log-opt "path=$LOG_DIR/ctr-$name.log" \
      "${env_args[@]}" \
      -e "${prefix}_HOST=127.0.0.1" -e "${prefix}_PORT=$port" \
      -e "OTEL_RESOURCE_ATTRIBUTES=container.name=$cname,container.image.name=$ref,container.runtime=podman" \
      "$ref" >/dev/null 2>"$RUN_DIR/podman-run-$name.err" ||
      die "$name" "podman run failed" "$RUN_DIR/podman-run-$name.err"
    deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
    until http_ok "http://127.0.0.1:$port/health/ready" 2>/dev/null; do
      running "$cname" ||
        die "$name" "container exited before becoming ready" "$LOG_DIR/ctr-$name.log"
      [ "$(date +%s)" -lt "$deadline" ] ||
        die "$name" "not ready after ${READY_TIMEOUT_S}s" "$LOG_DIR/ctr-$name.log"
      sleep 0.05
    done
    ready[$name]=$(( $(now_ms) - t0 ))
  done
  printf '\n  %-15s %s\n' container "cold start (podman run → /health/ready)"
  for entry in "${entries[@]}"; do
    name=${entry%%:*}
    printf '  %-15s %d.%02d s\n' "$name" $((ready[$name] / 1000)) $(((ready[$name] % 1000) / 10))
  done
  echo
}

cmd_down() {
  command -v podman >/dev/null 2>&1 || return 0
  local entry name cname
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}
    cname=$(container_name "$name")
    if podman container exists "$cname" 2>/dev/null; then
      podman stop --time 20 "$cname" >/dev/null 2>&1 || true
      podman rm --force "$cname" >/dev/null 2>&1 || true
      step "$name" "container removed"
    fi
  done
}

cmd_status() {
  local entry name cname
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}
    cname=$(container_name "$name")
    if running "$cname"; then
      printf '  %-14s container running  %s\n' "$name" \
        "$(podman healthcheck run "$cname" >/dev/null 2>&1 && echo healthy || echo unhealthy)"
    fi
  done
}

cmd=${1:-status}; shift || true
case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die containers "unknown command '$cmd' (up|down|status)" ;;
esac
