"""The sandbox inside the coordinator's container: the container's seccomp profile reaches every
sandboxed program, a program can't nest namespaces, and the container gives it nothing the
native sandbox doesn't (the threat tests in tests/e2e/test_sandbox_threats.py run here too)."""

from __future__ import annotations

import json

from tests.containers.podman import container, podman
from tests.e2e.client import ApiUser

# x86_64 syscall numbers the container's profile (deploy/containers/seccomp-coordinator.json)
# refuses; each is called with arguments that would otherwise get past the argument checks.
DENIED = {"keyctl": 250, "bpf": 321, "perf_event_open": 298, "io_uring_setup": 425, "ptrace": 101}

PROBE = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
for name, nr in %s.items():
    ctypes.set_errno(0)
    buf = ctypes.create_string_buffer(256)
    rc = libc.syscall(nr, 0, 0, buf, 0, 0)
    out[name] = [rc, os.strerror(ctypes.get_errno())]
rc = libc.unshare(0x10000000)  # CLONE_NEWUSER: a namespace of its own
out["unshare_user"] = [rc, os.strerror(ctypes.get_errno())]
print(json.dumps(out))
"""


async def test_the_containers_seccomp_profile_reaches_the_sandboxed_program(user: ApiUser) -> None:
    result = await user.run(PROBE % DENIED)
    assert result["status"] == "completed", result
    calls = json.loads(result["stdout"])
    for name in DENIED:
        assert calls[name] == [-1, "Operation not permitted"], (name, calls[name])
    rc, _ = calls["unshare_user"]
    assert rc == -1  # bubblewrap's --disable-userns: no nested namespaces for the program


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
