"""Stopping, killing and restarting parts of the native stack of this clone, for the fault
tests; and waiting until every service is ready again."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.polling import eventually
from tests.stack import local_stack

ROOT = Path(__file__).resolve().parents[2]
PIDS = ROOT / ".local" / "pids"
COMPONENTS = ROOT / "deploy" / "local" / "components"
STACK = local_stack()


def native_stack_here() -> bool:
    """Whether this clone started the stack (the fault tests need its process ids)."""
    return (PIDS / "kafka.pid").exists() and (PIDS / "ferretdb.pid").exists()


def component(name: str, command: str, *args: str, env: dict[str, str] | None = None) -> None:
    """``deploy/local/components/<name>.sh <command> [args]``, waiting for it to finish
    (``env``: variables set for it on top of this process's)."""
    subprocess.run(
        ["bash", str(COMPONENTS / f"{name}.sh"), command, *args],
        check=True,
        capture_output=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def log_tail(name: str, lines: int = 40) -> str:
    """The last lines of a component's log (``svc-notifier``, ``kafka``, ...), for failure
    messages."""
    path = ROOT / ".local" / "logs" / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def pid_of(name: str) -> int:
    return int((PIDS / f"{name}.pid").read_text())


def signal_group(name: str, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group of a component (``kafka``, ``svc-api``, ...)."""
    os.killpg(pid_of(name), sig)


async def services_ready(timeout_s: float = 120) -> None:
    async with httpx.AsyncClient(timeout=5) as http:

        async def ready() -> bool:
            for base in STACK.services.values():
                if (await http.get(f"{base}/health/ready")).status_code != 200:
                    return False
            return True

        await eventually(ready, timeout_s=timeout_s, what="every service ready")
