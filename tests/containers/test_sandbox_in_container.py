"""The coordinator's container has the privileges docs/containers.md lists and no more (the
threat tests of tests/e2e/test_sandbox_threats.py, the syscall filter's among them, run against
this container too)."""

from __future__ import annotations

import json

from tests.containers.podman import container, podman


def test_the_coordinator_runs_with_the_documented_privileges_and_no_more() -> None:
    (state,) = json.loads(podman("container", "inspect", container("coordinator")).stdout)
    host = state["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapAdd"] in (None, [])
    assert "no-new-privileges" in " ".join(host["SecurityOpt"] or [])
    status = podman(
        "exec",
        container("coordinator"),
        "grep",
        "-E",
        "^(CapEff|CapBnd|NoNewPrivs|Seccomp):",
        "/proc/1/status",
    ).stdout
    fields = dict(line.split(":\t") for line in status.strip().splitlines())
    assert fields["CapEff"] == fields["CapBnd"] == "0000000000000000", fields
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"  # filtered, by our profile
