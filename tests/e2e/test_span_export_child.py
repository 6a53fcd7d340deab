"""Each traced service exports its spans from an export child process of its own (issue 16,
third pass; libs/telemetry ``span_pipe.py``), and the execution's trace still arrives whole.

Reads the native stack's pid files (this clone's ``.local/pids``): skipped on a stack this
clone did not start. A service's export child is the process whose parent is the service and
whose command line runs ``integr8scode_telemetry.export_child``; it starts with the service's
first span, so the test makes an execution first (spans in the api, the coordinator, the
notifier's and the archiver's consumers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.client import ApiUser
from tests.e2e.stack_control import native_stack_here, pid_of
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
CHILD_MODULE = "integr8scode_telemetry.export_child"
# Services that make spans for every execution (the dlq-processor only for dead letters).
TRACED = ("svc-api", "svc-coordinator", "svc-notifier", "svc-event-replay")

pytestmark = pytest.mark.skipif(
    not native_stack_here(), reason="needs the native stack's pid files of this clone"
)


def export_children(parent: int) -> list[int]:
    """Live processes whose parent is ``parent`` and that run the export child."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z" and int(fields[1]) == parent and CHILD_MODULE.encode() in command:
            found.append(int(entry.name))
    return found


async def test_every_traced_service_exports_through_a_child_of_its_own(user: ApiUser) -> None:
    result = await user.run("print('export child')")
    assert result["status"] == "completed", result

    def whole(trace: JaegerTrace) -> bool:
        return {"integr8scode-backend", "execution-coordinator"} <= trace.services() and bool(
            trace.named("sandbox.run")
        )

    await wait_for_trace(STACK.jaeger_query, result["trace_id"], until=whole)
    for service in TRACED:
        pid = pid_of(service)

        async def one_child(pid: int = pid) -> list[int] | None:
            children = export_children(pid)
            return children if len(children) == 1 else None

        [child] = await eventually(
            one_child, timeout_s=30, what=f"{service} (pid {pid}) has one export child"
        )
        assert child != pid
