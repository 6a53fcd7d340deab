"""Which interpreters this host has, at which versions, and what the sandbox must bind for them.

Run once at start (``BubblewrapRunner.detect``). For each language the commands of its
``LanguageSpec`` are tried in order; each is resolved to an absolute binary path (symlinks
followed, so ``/usr/bin/python3`` becomes ``/usr/bin/python3.11``), asked ``--version``, and
kept if it is a real executable (wrapper scripts such as pyenv shims are skipped: inside the
sandbox there is no pyenv to dispatch to). The first interpreter of each short version wins.

The sandbox binds ``/usr`` (and the merged-/usr links or directories ``/bin``, ``/lib``,
``/lib64``, ``/sbin``) read-only and runs the resolved binary; an interpreter installed elsewhere
(``/opt/node-v20``) brings its own prefix as an extra read-only bind. Nothing of a virtualenv is
bound: a venv's ``python3`` resolves to its base interpreter.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from integr8scode_coordinator.domain.runtimes import LANGUAGES, LanguageSpec, parse_version
from integr8scode_coordinator.domain.sandbox import Runtime

log = logging.getLogger(__name__)

SYSTEM_ROOT = "/usr"
MERGED_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# Safe to bind whole: libraries, interpreters and their standard libraries, nothing per-user.
SYSTEM_PREFIXES = ("/usr/", *(f"{p}/" for p in MERGED_USR_LINKS))


@dataclass(frozen=True)
class Mount:
    """One bwrap mount operation: ``ro-bind`` (src → dest) or ``symlink`` (target at dest)."""

    kind: str
    source: str
    dest: str


@dataclass(frozen=True)
class Interpreter:
    language: str
    version: str  # short, as clients name it: "3.11"
    full_version: str  # "3.11.2"
    path: str  # absolute path of the binary, the same inside the sandbox
    binds: tuple[str, ...] = ()  # host directories outside /usr it needs, bound read-only


def system_mounts(root: str = "/") -> list[Mount]:
    """/usr read-only, and /bin, /lib… as this host has them (symlinks into /usr or real dirs)."""
    mounts = [Mount("ro-bind", SYSTEM_ROOT, SYSTEM_ROOT)]
    for path in MERGED_USR_LINKS:
        host = Path(root) / path.lstrip("/")
        if host.is_symlink():
            mounts.append(Mount("symlink", os.readlink(host), path))
        elif host.is_dir():
            mounts.append(Mount("ro-bind", path, path))
    return mounts


def _is_system(path: str) -> bool:
    return path.startswith(SYSTEM_PREFIXES)


def _prefix_of(binary: str) -> str:
    """The installation prefix of a binary: ``/opt/x/bin/node`` → ``/opt/x``."""
    parent = Path(binary).parent
    return str(parent.parent if parent.name == "bin" else parent)


def binds_for(path: str) -> tuple[str, tuple[str, ...]]:
    """(real binary, extra binds) for a command path. The sandbox runs the real binary, so the
    symlinks that led to it (``/etc/alternatives``, a virtualenv's ``bin``) are not needed
    inside; an installation outside the system prefixes brings its own prefix."""
    real = os.path.realpath(path)
    return real, (() if _is_system(real) else (_prefix_of(real),))


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def _version_output(binary: str, timeout_s: float) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - a fixed interpreter path and a fixed flag
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("interpreter %s did not answer --version: %s", binary, exc)
        return None
    return done.stdout + done.stderr


def probe(spec: LanguageSpec, command: str, timeout_s: float = 10.0) -> Interpreter | None:
    """One candidate command → an Interpreter, or None when it is absent or unusable."""
    found = command if os.path.isabs(command) else shutil.which(command)
    if found is None or not os.access(found, os.X_OK):
        return None
    real, binds = binds_for(found)
    if _is_script(real):
        log.info("skipping %s (%s): a wrapper script, not an interpreter", command, real)
        return None
    output = _version_output(real, timeout_s)
    parsed = parse_version(spec, output or "")
    if parsed is None:
        log.warning("could not read the version of %s from %r", real, output)
        return None
    full, short = parsed
    return Interpreter(
        language=spec.language,
        version=short,
        full_version=full,
        path=real,
        binds=binds,
    )


def detect_interpreters(
    specs: Iterable[LanguageSpec] = LANGUAGES.values(),
    extra_commands: Mapping[str, Sequence[str]] | None = None,
) -> list[Interpreter]:
    """Every usable interpreter, one per (language, short version), preferred ones first."""
    found: list[Interpreter] = []
    for spec in specs:
        seen_paths: set[str] = set()
        seen_versions: set[str] = set()
        commands = (*spec.commands, *(extra_commands or {}).get(spec.language, ()))
        for command in commands:
            interpreter = probe(spec, command)
            if interpreter is None or interpreter.path in seen_paths:
                continue
            seen_paths.add(interpreter.path)
            if interpreter.version in seen_versions:
                continue
            seen_versions.add(interpreter.version)
            found.append(interpreter)
    return found


def runtimes_of(interpreters: Sequence[Interpreter]) -> list[Runtime]:
    """The client-facing table: versions newest first, the default the preferred interpreter's."""
    by_language: dict[str, list[Interpreter]] = {}
    for interpreter in interpreters:
        by_language.setdefault(interpreter.language, []).append(interpreter)
    runtimes: list[Runtime] = []
    for language, offered in by_language.items():
        versions = sorted(
            (i.version for i in offered),
            key=lambda v: tuple(int(p) for p in v.split(".")),
            reverse=True,
        )
        runtimes.append(Runtime(language, versions, default_version=offered[0].version))
    return runtimes
