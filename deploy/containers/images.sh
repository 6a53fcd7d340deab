#!/usr/bin/env bash
# The five service images, built from their Dockerfiles (services/*/Dockerfile).
#
#   images.sh build [NAME...]   build the base if missing, then the images (all by default)
#   images.sh base              only the base image
#   images.sh sizes             one line per image: size, user, entry point
#   images.sh list              the image references, one per line
#
# With a Docker engine answering (and INTEGR8SCODE_PODMAN unset) `build` runs `docker build` with
# the Dockerfiles' default base (python:3.11-slim). Otherwise it uses podman with all of its state
# under $CACHE_DIR/podman (podman-env.sh) and a base made from Debian packages with mmdebstrap:
# nothing is pulled from a container registry. Images are tagged integr8scode/NAME:$IMAGE_TAG.
# shellcheck source=podman-env.sh
source "$(dirname "$0")/podman-env.sh"

NAMES=(api coordinator dlq-processor event-replay notifier)
IMAGE_TAG="${IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT_DIR/services/api/pyproject.toml")}"
# The base: Debian bookworm's python3 (3.11) with its venv module and CA certificates, without
# docs, man pages, translations or iconv modules (Python's codecs don't use them). Its tag names
# the recipe (BASE_RECIPE counts changes to the mmdebstrap line), so a new recipe builds anew.
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,ca-certificates
BASE_RECIPE=4
BASE_IMAGE="${BASE_IMAGE:-localhost/integr8scode/base:$BASE_SUITE-$(printf '%s' "$BASE_PACKAGES $BASE_RECIPE" | sha256sum | cut -c1-12)}"
HOST_CA=/etc/ssl/certs/ca-certificates.crt

use_docker() {
  [ -z "${INTEGR8SCODE_PODMAN:-}" ] && command -v docker >/dev/null 2>&1 &&
    docker info >/dev/null 2>&1
}

image_ref() { printf 'localhost/integr8scode/%s:%s' "$1" "$IMAGE_TAG"; }

have_image() { podman image exists "$1" 2>/dev/null; }

cmd_base() {
  if have_image "$BASE_IMAGE"; then
    step base "$BASE_IMAGE cached"
    return 0
  fi
  need_cmd mmdebstrap base
  local tar="$PODMAN_DIR/tmp/base-$$.tar" log
  log=$(log_file base-image)
  step base "mmdebstrap $BASE_SUITE ($BASE_PACKAGES)"
  # No mirror argument: the machine's own apt sources, which the image keeps for later stages.
  mmdebstrap --variant=minbase --include="$BASE_PACKAGES" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/lib/*/gconv/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log' \
    "$BASE_SUITE" "$tar" >"$log" 2>&1 || die base "mmdebstrap failed" "$log"
  podman import --quiet --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
    --change "LABEL io.integr8scode.base-recipe=$BASE_PACKAGES" \
    "$tar" "$BASE_IMAGE" >>"$log" 2>&1 || die base "podman import failed" "$log"
  rm -f "$tar"
  step base "built $BASE_IMAGE ($(image_size "$BASE_IMAGE"))"
}

image_size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}'; }

selected() {
  if [ $# -eq 0 ]; then printf '%s\n' "${NAMES[@]}"; else printf '%s\n' "$@"; fi
}

build_one() {
  local name=$1 ref log t0
  ref=$(image_ref "$name")
  log=$(log_file "image-$name")
  t0=$(date +%s)
  [ -f "$ROOT_DIR/services/$name/Dockerfile" ] || die images "no such service: $name"
  # --network host: the build installs from PyPI (and apt for the coordinator). The host's CA
  # bundle and the two cert variables are for this machine's TLS-inspecting proxy only; the
  # Dockerfiles leave those build arguments unset for everyone else.
  podman build --quiet --format docker --pull=never --network host \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "SSL_CERT_FILE=$HOST_CA" --build-arg "PIP_CERT=$HOST_CA" \
    --volume "$HOST_CA:$HOST_CA:ro" \
    --label "io.integr8scode.base-image=$BASE_IMAGE" \
    -f "$ROOT_DIR/services/$name/Dockerfile" -t "$ref" "$ROOT_DIR" >"$log" 2>&1 ||
    die "$name" "image build failed" "$log"
  step "$name" "image $ref ($(image_size "$ref"), $(( $(date +%s) - t0 ))s)"
}

cmd_build() {
  if use_docker; then
    local name
    for name in $(selected "$@"); do
      docker build -f "$ROOT_DIR/services/$name/Dockerfile" -t "integr8scode/$name:$IMAGE_TAG" "$ROOT_DIR"
    done
    return 0
  fi
  need_cmd podman images
  cmd_base
  local name
  for name in $(selected "$@"); do build_one "$name"; done
  # Layers of earlier builds that no tag uses any more.
  podman image prune --force >/dev/null 2>&1 || true
}

cmd_sizes() {
  local name ref
  printf '%-15s %-9s %-12s %s\n' image size user entrypoint
  for name in "${NAMES[@]}"; do
    ref=$(image_ref "$name")
    if ! have_image "$ref"; then
      printf '%-15s %s\n' "$name" "not built"
      continue
    fi
    printf '%-15s %-9s %-12s %s\n' "$name" "$(image_size "$ref")" \
      "$(podman image inspect --format '{{.Config.User}}' "$ref")" \
      "$(podman image inspect --format '{{join .Config.Entrypoint " "}}' "$ref")"
  done
}

cmd_list() {
  local name
  for name in "${NAMES[@]}"; do image_ref "$name"; echo; done
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  base) cmd_base ;;
  sizes) cmd_sizes ;;
  list) cmd_list ;;
  *)
    echo "usage: $0 build [NAME...] | base | sizes | list" >&2
    exit 2
    ;;
esac
