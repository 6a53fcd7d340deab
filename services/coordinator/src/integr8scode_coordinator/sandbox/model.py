"""The sandbox contract: what a run is asked to do, and what it reports.

A *runner* runs one untrusted script under limits and reports a ``SandboxResult``. The
coordinator's saga only sees the ``SandboxRunner`` Protocol, so runners are interchangeable:

- ``sandbox.bubblewrap.BubblewrapRunner`` (the default) runs the script on this machine inside
  bubblewrap namespaces, with rlimits and, where the host allows, cgroup limits.
- A Kubernetes runner would be a new module here (say ``sandbox/kubernetes.py``) with the same three
  members: ``name = "kubernetes"``; ``runtimes()`` from the images it may start; ``run()`` that
  creates one hardened pod per execution (non-root, read-only root filesystem, no capabilities,
  a deny-all NetworkPolicy, ``resources.limits`` from ``SandboxLimits``, ``activeDeadlineSeconds``
  as a backstop), streams its logs through ``CappedOutput``, deletes the pod on timeout or when
  ``cancel`` is set, and maps the pod's termination (``OOMKilled``, exit code, deadline) onto an
  ``Observation`` so ``classify`` (both in ``outcome``) gives the same outcomes and messages.
  The composition root (``app.py``) picks the runner; nothing else changes.

Outcomes (DESIGN §3): ``completed`` — the program ran to its end, whatever its exit code;
``timed_out`` — the wall-clock limit ended it; ``cancelled`` — someone cancelled it while it ran;
``failed`` — a limit was hit (memory, processes, file size, disk, CPU, output flood) or the
platform failed, and ``error`` says which in words a user understands.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, Protocol

Outcome = Literal["completed", "timed_out", "failed", "cancelled"]

MIB = 1024 * 1024
PLATFORM_FAILURE = "sandbox failed to start"  # how a platform error's message begins


class SandboxUnavailableError(Exception):
    """The host can't run sandboxes (no bubblewrap, no user namespaces, no interpreter)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run. Sizes in MB are mebibytes; ``max_output_bytes`` is per stream."""

    timeout_s: float
    memory_mb: int
    cpu_time_s: float | None = None
    max_output_bytes: int = MIB
    max_processes: int = 64
    max_file_size_mb: int = 16
    max_open_files: int = 64
    tmpfs_size_mb: int = 64


@dataclass(frozen=True)
class WorkFile:
    """An extra file the run finds in its working directory: ``name`` is relative to it
    (``work_files.name_problem`` says which names are refused)."""

    name: str
    content: bytes
    executable: bool = False  # a program the compile phase built


@dataclass(frozen=True)
class SandboxRequest:
    execution_id: str
    language: str
    language_version: str
    script: str
    stdin: str | bytes
    limits: SandboxLimits
    args: tuple[str, ...] = ()  # after the script's path on the program's command line
    files: tuple[WorkFile, ...] = ()
    # Lower compile limits than the runner's (each capped by the runner's own); None: its own.
    compile_limits: SandboxLimits | None = None


@dataclass(frozen=True)
class CompileResult:
    """The compile phase of a compiled language: the compiler's exit code and output."""

    exit_code: int | None
    stdout: str
    stderr: str
    wall_time_ms: float


@dataclass(frozen=True)
class SandboxResult:
    outcome: Outcome
    exit_code: int | None
    signal: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    cpu_time_ms: float
    wall_time_ms: float
    peak_memory_kb: int
    error: str | None
    # The kept bytes as the program wrote them; ``stdout``/``stderr`` are their UTF-8 reading
    # (with replacement), which loses what is not text.
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    compile: CompileResult | None = None  # compiled languages only


@dataclass(frozen=True)
class Runtime:
    """A language this runner offers: ``versions`` as clients name them (``"3.11"``)."""

    language: str
    versions: list[str]
    default_version: str
    script_file: str = ""  # the script's name in the working directory (no extra file's)
    compiled: bool = False  # a compile phase runs before the program (``SandboxResult.compile``)
    full_versions: list[str] = field(default_factory=list)  # as detected, one per ``versions``


class SandboxRunner(Protocol):
    """Runs untrusted scripts. Implementations never raise for anything the script does."""

    name: str

    async def run(self, request: SandboxRequest, cancel: asyncio.Event) -> SandboxResult:
        """Run to a terminal outcome; when ``cancel`` is set, kill everything and say so."""
        ...

    def runtimes(self) -> list[Runtime]: ...
