"""Podman as `make images` and `make container-test` set it up: state under the stack's cache."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("INTEGR8SCODE_CACHE", Path.home() / ".cache" / "integr8scode"))
CONF = CACHE / "podman" / "conf"
# name: (env prefix, port, entry point, service.name)
SERVICES = {
    "api": ("API", 8000, "integr8scode-api", "integr8scode-backend"),
    "coordinator": ("COORDINATOR", 8001, "integr8scode-coordinator", "execution-coordinator"),
    "dlq-processor": ("DLQ", 8002, "integr8scode-dlq-processor", "dlq-processor"),
    "event-replay": ("REPLAY", 8003, "integr8scode-event-replay", "event-replay"),
    "notifier": ("NOTIFIER", 8004, "integr8scode-notifier", "notifier"),
}


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's storage and configuration; fails loudly if it is missing."""
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(CONF / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(CONF / "storage.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(CONF / "registries.conf"),
    }
    assert (CONF / "storage.conf").exists(), f"no podman configuration in {CONF}: run make images"
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr.strip()}"
    return done


def image_refs() -> dict[str, str]:
    """The references `images.sh` tags the five images with."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "containers" / "images.sh"), "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    refs = {ref.rsplit("/", 1)[1].split(":", 1)[0]: ref for ref in out}
    assert set(refs) == set(SERVICES), refs
    return refs


def container(name: str) -> str:
    return f"integr8scode-{name}"
