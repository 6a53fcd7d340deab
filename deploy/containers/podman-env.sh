# shellcheck shell=bash
# Podman/buildah with all of their state in our own cache (sourced by images.sh and run.sh).
#
# Images (the Debian-made base and the five service images) are kept under
# $CACHE_DIR/podman/storage so a second clone rebuilds nothing; run state (container records,
# locks) lives under $CACHE_DIR/podman/run. Nothing outside these directories is touched, and no
# image is ever pulled from a registry here.
#
# The settings below are the ones these machines need (../shared/CONTAINERS.md):
# - runc with the cgroupfs manager: crun refuses the hybrid cgroup v1/v2 layout, and there is no
#   systemd to manage cgroups;
# - default ulimits no higher than the hard limits of the VM (there is no CAP_SYS_RESOURCE);
# - file event logger, no registries to search.
# shellcheck source=../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

PODMAN_DIR="$CACHE_DIR/podman"
PODMAN_CONF_DIR="$PODMAN_DIR/conf"
mkdir -p "$PODMAN_DIR/storage" "$PODMAN_DIR/run" "$PODMAN_DIR/tmp" "$PODMAN_CONF_DIR"

_hard_nofile=$(ulimit -Hn)
_hard_nproc=$(ulimit -Hu)
[ "$_hard_nofile" = unlimited ] && _hard_nofile=1048576
[ "$_hard_nproc" = unlimited ] && _hard_nproc=65536
_nofile=$(( _hard_nofile < 20000 ? _hard_nofile : 20000 ))
_nproc=$(( _hard_nproc < 32768 ? _hard_nproc : 32768 ))

cat >"$PODMAN_CONF_DIR/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/run/storage"
CONF

cat >"$PODMAN_CONF_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$_nofile:$_nofile", "nproc=$_nproc:$_nproc"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/run/events.log"
tmp_dir = "$PODMAN_DIR/run/libpod"
static_dir = "$PODMAN_DIR/storage/libpod"
volume_path = "$PODMAN_DIR/storage/volumes"
image_copy_tmp_dir = "$PODMAN_DIR/tmp"

[network]
network_config_dir = "$PODMAN_DIR/storage/networks"
CONF

cat >"$PODMAN_CONF_DIR/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "disabled"
CONF

export CONTAINERS_STORAGE_CONF="$PODMAN_CONF_DIR/storage.conf"
export CONTAINERS_CONF="$PODMAN_CONF_DIR/containers.conf"
export CONTAINERS_REGISTRIES_CONF="$PODMAN_CONF_DIR/registries.conf"
export TMPDIR="$PODMAN_DIR/tmp"
