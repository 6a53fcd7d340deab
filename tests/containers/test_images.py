"""The five service images, as built by `make images` and started by `make container-test`.

Each runs its service as a non-root numeric user from a non-editable install, with no source
tree and no package or build tools in the final stage; its health check reads the service's own
settings (so it follows a changed port); an invalid setting stops it with one line and status 2;
the coordinator's carries the sandbox and runtimes.
"""

from __future__ import annotations

import json

import pytest

from tests.containers.podman import SERVICES, container, image_refs, podman

REFS = image_refs()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_image_runs_its_service_as_a_non_root_numeric_user(name: str) -> None:
    (config,) = json.loads(podman("image", "inspect", REFS[name]).stdout)
    assert config["Config"]["User"] == "10001:10001"
    inside = podman("exec", container(name), "id", "-u").stdout.strip()
    assert inside == "10001"
    assert config["Config"]["Labels"]["io.integr8scode.service-name"] == SERVICES[name][3]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_source_tree_no_editable_links_and_no_build_tools(name: str) -> None:
    module = "integr8scode_" + name.replace("-", "_")
    # The coordinator's compilers are the sandbox's languages (c, c++, go, rust, java, ...),
    # run only inside it: its image keeps them, and no other image has one.
    tools = "uv pip pip3 make git" if name == "coordinator" else "uv pip pip3 gcc cc make git"
    script = (
        "set -e; test ! -e /src; "
        f"for tool in {tools}; do "
        '  if command -v "$tool" >/dev/null 2>&1; then echo "found $tool"; exit 1; fi; done; '
        "if python3 -m pip --version >/dev/null 2>&1; then echo 'found pip module'; exit 1; fi; "
        "if grep -rl '/src' /opt/venv/lib/python3*/site-packages/*.pth 2>/dev/null; then "
        "  echo 'editable link'; exit 1; fi; "
        "python3 -c 'import integr8scode_events, integr8scode_mongo, integr8scode_telemetry, "
        f"{module}; print(integr8scode_events.__file__); print({module}.__file__)'"
    )
    done = podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        REFS[name],
        "-c",
        script,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in done.stdout.split():
        assert path.startswith("/opt/venv/lib/"), path


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_health_check_probes_the_configured_port(name: str) -> None:
    prefix, _, entry, _ = SERVICES[name]
    (config,) = json.loads(podman("image", "inspect", REFS[name]).stdout)
    assert config["Healthcheck"]["Test"] == ["CMD", entry, "healthcheck"]
    assert podman("healthcheck", "run", container(name), check=False).returncode == 0
    # The same check with the service's port set elsewhere looks there, and finds nothing.
    moved = podman(
        "exec", "-e", f"{prefix}_PORT=1", container(name), entry, "healthcheck", check=False
    )
    assert moved.returncode == 1, moved.stdout + moved.stderr


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_an_invalid_setting_stops_the_image_with_one_line_and_status_2(name: str) -> None:
    prefix, _, entry, _ = SERVICES[name]
    # No network: had the setting been accepted, the service would start, not exit.
    done = podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--no-healthcheck",  # podman would log its own systemd complaints on stderr
        "-e",
        f"{prefix}_PORT=70000",
        REFS[name],
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"{entry}: invalid configuration: "), done.stderr
    assert "Traceback" not in done.stderr


def test_the_coordinator_image_carries_the_sandbox_and_the_runtimes() -> None:
    for tool in ("bwrap", "prlimit", "node", "bash", "python3", "tini"):
        podman("exec", container("coordinator"), "sh", "-c", f"command -v {tool}")


def test_the_containers_run_read_only_without_capabilities() -> None:
    for name in SERVICES:
        (state,) = json.loads(podman("container", "inspect", container(name)).stdout)
        assert state["HostConfig"]["ReadonlyRootfs"] is True, name
        status = podman("exec", container(name), "grep", "^CapEff", "/proc/self/status").stdout
        assert status.split()[1] == "0000000000000000", (name, status)
        done = podman("exec", container(name), "touch", "/opt/venv/x", check=False)
        assert done.returncode != 0, name
