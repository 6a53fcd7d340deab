#!/usr/bin/env bash
# Installs what a bare Debian machine lacks for the native stack and the Python workspace:
# Debian packages (Redis, bubblewrap, docker-compose for static validation, curl, chromium for the
# page's browser test; podman, buildah
# and mmdebstrap for the service images), uv, and the workspace's virtualenv. Idempotent; safe to run on every `make up` / `make test`.
source "$(dirname "$0")/lib.sh"

UV_VERSION="${UV_VERSION:-0.13.8}"
DEBS=(redis-server bubblewrap libseccomp2 docker-compose curl iproute2 procps chromium
  podman buildah runc fuse-overlayfs mmdebstrap uidmap containernetworking-plugins slirp4netns)
# The sandbox's languages (issue 14), Debian's own: the coordinator runs only these, never a
# /usr/local or ~/.cargo toolchain. Headless/CLI packages, no recommends (apt_install).
SANDBOX_DEBS=(gcc g++ golang-go rustc node-typescript php-cli ruby perl
  lua5.1 lua5.2 lua5.3 lua5.4 openjdk-17-jdk-headless)
DEBS+=("${SANDBOX_DEBS[@]}")

missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  step prereqs "apt: ${missing[*]}"
  # Keep Debian's maintainer scripts from starting a distro Redis on our port.
  policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  apt_install "${missing[@]}" || die prereqs "apt-get install ${missing[*]} failed"
  [ "$policy_created" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
fi
[ -x /usr/local/go/bin/go ] && PATH="$PATH:/usr/local/go/bin"
for p in java mvn go python3; do
  command -v "$p" >/dev/null 2>&1 || die prereqs "'$p' is required (Java 17, Maven, Go 1.24+, Python 3.11)"
done

if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  step prereqs "uv $UV_VERSION"
  python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >/dev/null 2>&1 ||
    python3 -m pip install -q --user --disable-pip-version-check "uv==$UV_VERSION" ||
    die prereqs "could not install uv $UV_VERSION with pip"
fi

step prereqs "uv sync (workspace virtualenv)"
(cd "$ROOT_DIR" && uv sync --all-packages --quiet) || die prereqs "uv sync failed"
step prereqs "ready"
