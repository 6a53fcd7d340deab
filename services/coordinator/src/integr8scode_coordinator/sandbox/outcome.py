"""How a run is read: its output, capped; the facts a runner gathered; the outcome they mean.

Runner-neutral, like ``model``: any runner keeps each output stream in a ``CappedOutput``, puts
what it saw of a run (exit code, why it killed it, the kernel's counters, stderr) in an
``Observation``, and ``classify`` turns that into the outcome, exit code, signal and the error
a user reads (``memory limit of 128 MB exceeded``, ``sandbox failed to start: …``). The
language-specific stderr markers come from ``languages.LanguageSpec``; the ones here are libc's.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass, field
from typing import Literal

from integr8scode_coordinator.sandbox.model import MIB, PLATFORM_FAILURE, Outcome, SandboxLimits


class CappedOutput:
    """One output stream: keeps the first ``cap`` bytes, counts (and drops) the rest.

    The reader keeps draining past the cap so the program never blocks on a full pipe;
    ``flooded`` turns true past ``flood_limit`` bytes, the point where the runner stops the
    program rather than read forever.
    """

    def __init__(self, cap: int, flood_limit: int) -> None:
        self.cap = cap
        self.flood_limit = flood_limit
        self.total = 0
        self._kept = bytearray()

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self._kept)
        if room > 0:
            self._kept += chunk[:room]
        self.total += len(chunk)

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    @property
    def flooded(self) -> bool:
        return self.total > self.flood_limit

    def data(self) -> bytes:
        """The kept bytes, exactly as written."""
        return bytes(self._kept)

    def text(self) -> str:
        """UTF-8 with replacement; a character cut in half by the cap is dropped, not mangled."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        return decoder.decode(bytes(self._kept), final=not self.truncated)


class Limit(enum.StrEnum):
    MEMORY = "memory"
    PROCESSES = "processes"
    FILE_SIZE = "file_size"
    DISK = "disk"
    OPEN_FILES = "open_files"
    CPU = "cpu"


KillReason = Literal["timeout", "cancel", "output", "memory", "processes", "cpu"]

# What a program prints when a limit refused it something (strerror texts are libc's, the same
# for every language); language-specific markers come from ``languages.LanguageSpec``.
ERRNO_MARKERS: tuple[tuple[Limit, str], ...] = (
    (Limit.FILE_SIZE, "File too large"),
    (Limit.DISK, "No space left on device"),
    (Limit.DISK, "Disk quota exceeded"),
    (Limit.OPEN_FILES, "Too many open files"),
    (Limit.MEMORY, "Cannot allocate memory"),
)

SIGKILL = 9
SIGXCPU = 24
SIGXFSZ = 25


@dataclass(frozen=True)
class Observation:
    """The facts a runner gathered about one run, before they are read as an outcome."""

    exit_code: int | None  # the program's, as the runner saw it (128+N when killed by signal N)
    killed_for: KillReason | None = None
    setup_error: str | None = None  # the sandbox never ran the program
    oom_kills: int = 0  # processes the kernel killed at the memory limit
    process_limit_hit: bool = False  # a fork was refused at the process limit
    cpu_time_ms: float = 0.0
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    markers: tuple[tuple[Limit, str], ...] = field(default=())


def limit_message(limit: Limit, limits: SandboxLimits) -> str:
    match limit:
        case Limit.MEMORY:
            return f"memory limit of {limits.memory_mb} MB exceeded"
        case Limit.PROCESSES:
            return f"process limit of {limits.max_processes} reached"
        case Limit.FILE_SIZE:
            return f"file size limit of {limits.max_file_size_mb} MB exceeded"
        case Limit.DISK:
            return f"disk space limit of {limits.tmpfs_size_mb} MB exceeded (no space left)"
        case Limit.OPEN_FILES:
            return f"open file limit of {limits.max_open_files} reached"
        case Limit.CPU:
            return f"CPU time limit of {_seconds(limits.cpu_time_s or 0)} exceeded"


def timeout_message(limits: SandboxLimits) -> str:
    return f"wall-clock timeout of {_seconds(limits.timeout_s)} exceeded"


def truncation_message(limits: SandboxLimits) -> str:
    return f"output truncated at {human_bytes(limits.max_output_bytes)}"


def flood_message(limits: SandboxLimits, flood_limit: int) -> str:
    return (
        f"output limit exceeded: the program wrote more than {human_bytes(flood_limit)}; "
        f"the first {human_bytes(limits.max_output_bytes)} per stream were kept"
    )


def classify(
    obs: Observation, limits: SandboxLimits, flood_limit: int
) -> tuple[Outcome, int | None, int | None, str | None]:
    """(outcome, exit_code, signal, error) of a run."""
    if obs.setup_error is not None:
        return "failed", None, None, f"{PLATFORM_FAILURE}: {obs.setup_error}"
    if obs.killed_for is not None:
        return _killed(obs, limits, flood_limit)
    exit_code = obs.exit_code
    signal = exit_code - 128 if exit_code is not None and 128 < exit_code < 128 + 65 else None
    limit = _limit_hit(obs, exit_code, signal, limits)
    if limit is not None:
        return "failed", exit_code, signal, limit_message(limit, limits)
    return "completed", exit_code, signal, _truncation(obs, limits)


def _limit_hit(
    obs: Observation, exit_code: int | None, signal: int | None, limits: SandboxLimits
) -> Limit | None:
    """The limit that ended or refused the program, if any. The kernel's counters and a refused
    fork count whatever the exit code (a fork bomb's first shell exits 0 while its children are
    refused); anything else explains a run only when it did not end cleanly — a program that
    caught ``MemoryError`` and exited 0 has completed."""
    from_stderr = _limit_from_stderr(obs)
    if obs.oom_kills > 0:
        return Limit.MEMORY
    if obs.process_limit_hit or from_stderr is Limit.PROCESSES:
        return Limit.PROCESSES
    if exit_code == 0:
        return None
    return _limit_from_signal(signal, obs, limits) or from_stderr


def _killed(
    obs: Observation, limits: SandboxLimits, flood_limit: int
) -> tuple[Outcome, int | None, int | None, str | None]:
    match obs.killed_for:
        case "cancel":
            return "cancelled", None, SIGKILL, "cancelled while running"
        case "timeout":
            error = timeout_message(limits)
            if obs.process_limit_hit or _limit_from_stderr(obs) is Limit.PROCESSES:
                error += f"; the {limit_message(Limit.PROCESSES, limits)}"
            return "timed_out", None, SIGKILL, error
        case "output":
            return "failed", None, SIGKILL, flood_message(limits, flood_limit)
        case "memory":
            return "failed", None, SIGKILL, limit_message(Limit.MEMORY, limits)
        case "cpu":
            return "failed", None, SIGKILL, limit_message(Limit.CPU, limits)
        case _:
            return "failed", None, SIGKILL, limit_message(Limit.PROCESSES, limits)


def _limit_from_signal(signal: int | None, obs: Observation, limits: SandboxLimits) -> Limit | None:
    if signal == SIGXCPU:
        return Limit.CPU
    if signal == SIGXFSZ:
        return Limit.FILE_SIZE
    cpu_limit_ms = (limits.cpu_time_s or 0) * 1000
    if signal == SIGKILL and cpu_limit_ms and obs.cpu_time_ms >= cpu_limit_ms:
        return Limit.CPU  # the hard CPU rlimit is a SIGKILL one second after SIGXCPU
    return None


def _limit_from_stderr(obs: Observation) -> Limit | None:
    for limit, marker in (*obs.markers, *ERRNO_MARKERS):
        if marker in obs.stderr:
            return limit
    return None


def _truncation(obs: Observation, limits: SandboxLimits) -> str | None:
    if obs.stdout_truncated or obs.stderr_truncated:
        return truncation_message(limits)
    return None


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def _seconds(value: float) -> str:
    return f"{value:g}s"
