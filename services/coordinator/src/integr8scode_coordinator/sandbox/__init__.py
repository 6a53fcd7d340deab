"""The sandbox: the coordinator's security boundary, where untrusted scripts run under limits.

This face is the contract the rest of the coordinator sees: a ``SandboxRunner`` takes a
``SandboxRequest`` (a script, its ``SandboxLimits``) and reports a ``SandboxResult``; it offers
``Runtime``s. The runner the composition root builds is ``sandbox.bubblewrap.BubblewrapRunner``
(imported from there, so that importing the contract loads no runner). Nothing here imports the
rest of the coordinator (an import-linter contract holds it).
"""

from integr8scode_coordinator.sandbox.compile_phase import COMPILATION_FAILED
from integr8scode_coordinator.sandbox.model import (
    CompileResult,
    Outcome,
    Runtime,
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    SandboxRunner,
    SandboxUnavailableError,
    WorkFile,
)
from integr8scode_coordinator.sandbox.work_files import args_problem, files_problem

__all__ = [
    "COMPILATION_FAILED",
    "CompileResult",
    "Outcome",
    "Runtime",
    "SandboxLimits",
    "SandboxRequest",
    "SandboxResult",
    "SandboxRunner",
    "SandboxUnavailableError",
    "WorkFile",
    "args_problem",
    "files_problem",
]
