"""The language table: how each language is invoked inside the sandbox and how versions match.

Every interpreter reads the script from a file in the sandbox's private working directory
(``/work``), runs with an empty environment and ignores any user or site configuration:

- python: ``python3 -I -S -B -u main.py`` — isolated mode (no ``PYTHON*`` variables, no user
  site, script dir not on ``sys.path`` beyond itself), no ``site`` import (stdlib only), no
  bytecode writes, unbuffered so output produced before a kill is not lost.
- javascript: ``node --max-old-space-size=<¾ of the memory limit> main.js`` — V8 fails with
  "JavaScript heap out of memory" before the kernel has to kill it.
- bash: ``bash --noprofile --norc main.sh``.

Versions: a runtime offers *short* versions (``"3.11"``, ``"20"``, ``"5.2"``: the part a
language keeps compatible). A request names one of those, or is more precise (``"3.11.2"``
matches ``"3.11"``; the patch level is not promised), or less precise (``"3"`` takes the newest
``3.x``), or empty (the default).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from integr8scode_coordinator.sandbox.model import SandboxLimits
from integr8scode_coordinator.sandbox.outcome import Limit

WORKDIR = "/work"


def _python_argv(interpreter: str, script: str, _: SandboxLimits) -> list[str]:
    return [interpreter, "-I", "-S", "-B", "-u", script]


def node_heap_mb(limits: SandboxLimits) -> int:
    return max(16, limits.memory_mb * 3 // 4)


def _node_argv(interpreter: str, script: str, limits: SandboxLimits) -> list[str]:
    return [interpreter, f"--max-old-space-size={node_heap_mb(limits)}", script]


def _bash_argv(interpreter: str, script: str, _: SandboxLimits) -> list[str]:
    return [interpreter, "--noprofile", "--norc", script]


@dataclass(frozen=True)
class LanguageSpec:
    language: str
    file_name: str
    # Commands tried at start, in order of preference; the first one of each short version wins.
    commands: tuple[str, ...]
    version_pattern: re.Pattern[str]  # applied to ``<command> --version``
    short_parts: int  # how many leading components make the version clients see
    argv: Callable[[str, str, SandboxLimits], list[str]]
    markers: tuple[tuple[Limit, str], ...]  # stderr texts that mean a limit refused something
    # Arguments that make the interpreter print, one per line, data directories it reads at
    # run time that are not next to its binary or libraries (bound into the sandbox).
    data_dirs_args: tuple[str, ...] = ()

    @property
    def script_path(self) -> str:
        return f"{WORKDIR}/{self.file_name}"

    def command(self, interpreter: str, limits: SandboxLimits) -> list[str]:
        return self.argv(interpreter, self.script_path, limits)


LANGUAGES: dict[str, LanguageSpec] = {
    spec.language: spec
    for spec in (
        LanguageSpec(
            language="python",
            file_name="main.py",
            commands=("/usr/bin/python3", "/usr/local/bin/python3", "python3"),
            version_pattern=re.compile(r"Python (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_python_argv,
            markers=(
                (Limit.MEMORY, "MemoryError"),
                (Limit.PROCESSES, "can't start new thread"),
                (Limit.PROCESSES, "BlockingIOError: [Errno 11]"),
            ),
            data_dirs_args=(
                "-I",
                "-S",
                "-c",
                "import sysconfig\nfor k in 'stdlib', 'platstdlib': print(sysconfig.get_path(k))",
            ),
        ),
        LanguageSpec(
            language="javascript",
            file_name="main.js",
            commands=("/usr/bin/node", "/usr/local/bin/node", "node", "nodejs"),
            version_pattern=re.compile(r"v(\d+\.\d+\.\d+)"),
            short_parts=1,
            argv=_node_argv,
            markers=(
                (Limit.MEMORY, "JavaScript heap out of memory"),
                (Limit.MEMORY, "Array buffer allocation failed"),
                (Limit.MEMORY, "Fatal process out of memory"),
                (Limit.MEMORY, "Fatal process OOM"),
                (Limit.PROCESSES, "spawn EAGAIN"),
            ),
            # Debian's node loads some builtins (acorn, cjs-module-lexer, undici) from its
            # module dirs (/usr/share/nodejs, ...): the build's ``node_relative_path``.
            data_dirs_args=(
                "-e",
                'const v = process.config.variables, path = require("path"), fs = require("fs");'
                ' for (const rel of String(v.node_relative_path || "").split(":")) {'
                ' const dir = path.join(String(v.node_prefix || "/usr"), rel);'
                " if (rel && fs.existsSync(dir)) console.log(dir); }",
            ),
        ),
        LanguageSpec(
            language="bash",
            file_name="main.sh",
            commands=("/usr/bin/bash", "/bin/bash", "bash"),
            version_pattern=re.compile(r"version (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_bash_argv,
            markers=(
                (Limit.MEMORY, "xmalloc: cannot allocate"),
                (Limit.PROCESSES, "fork: retry: Resource temporarily unavailable"),
                (Limit.PROCESSES, "fork: Resource temporarily unavailable"),
            ),
        ),
    )
}


def parse_version(spec: LanguageSpec, output: str) -> tuple[str, str] | None:
    """(full, short) from ``--version`` output: ``"Python 3.11.2"`` → ``("3.11.2", "3.11")``."""
    found = spec.version_pattern.search(output)
    if found is None:
        return None
    full = found.group(1)
    return full, ".".join(full.split(".")[: spec.short_parts])


def _parts(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return None


def match_version(requested: str, offered: Sequence[str], default: str) -> str | None:
    """The offered short version a request means, or None when nothing matches."""
    requested = requested.strip().removeprefix("v")
    if not requested:
        return default if default in offered else None
    if requested in offered:
        return requested
    wanted = _parts(requested)
    if wanted is None:
        return None
    candidates: list[tuple[tuple[int, ...], str]] = []
    for version in offered:
        have = _parts(version)
        if have is None:
            continue
        common = min(len(have), len(wanted))
        if have[:common] == wanted[:common]:
            candidates.append((have, version))
    return max(candidates)[1] if candidates else None
