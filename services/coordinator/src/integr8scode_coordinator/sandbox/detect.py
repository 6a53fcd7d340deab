"""Which interpreters this host has, at which versions, and what the sandbox must bind for them.

Run once at start (``BubblewrapRunner.detect``). For each language the commands of its
``LanguageSpec`` are tried in order; each is resolved to an absolute binary path (symlinks
followed, so ``/usr/bin/python3`` becomes ``/usr/bin/python3.11``), asked ``--version``, and
kept if it is a real executable (wrapper scripts such as pyenv shims are skipped: inside the
sandbox there is no pyenv to dispatch to). The first interpreter of each short version wins.

The sandbox binds only what programs need to run, read-only, never a whole tree such as
``/usr`` (which holds whatever a host installs, sockets included, and is too large to check at
every start): ``/usr/bin``, locale and time-zone data (``SYSTEM_DIRS``), and the directories of
the shared libraries the launcher's shell and ``prlimit`` load; the merged-/usr links ``/bin``,
``/lib``… as symlinks. Each interpreter adds its binary's directory, its libraries'
directories (as the dynamic loader lists them) and its language's own data (Python's standard
library, as ``sysconfig`` names it). An interpreter needing anything under a host-private root
(``bind_audit.FORBIDDEN_ROOTS``: ``/home``, ``/root``, ``/run``, ``/var``, ``/tmp``…) is
dropped. Nothing of a virtualenv is bound: a venv's ``python3`` resolves to its base
interpreter. ``bind_audit`` checks the whole set at start.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from integr8scode_coordinator.sandbox.bind_audit import compact, forbidden
from integr8scode_coordinator.sandbox.languages import LANGUAGES, LanguageSpec, parse_version
from integr8scode_coordinator.sandbox.model import Runtime

log = logging.getLogger(__name__)

MERGED_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# Bound when the host has them: the commands a script may call, and the data libc reads.
SYSTEM_DIRS = ("/usr/bin", "/usr/lib/locale", "/usr/share/zoneinfo")
LAUNCH_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
# A line of the dynamic loader's listing: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f…)"
# or, for the loader itself, "/lib64/ld-linux-x86-64.so.2 (0x7f…)".
LISTED_LIBRARY = re.compile(r"(/\S+) \(0x[0-9a-f]+\)")


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
    binds: tuple[str, ...] = ()  # host directories it needs, bound read-only


def library_dirs(binary: str, timeout_s: float = 10.0) -> tuple[str, ...]:
    """The directories of the shared libraries (and the loader) a dynamic binary loads, as the
    loader lists them (``LD_TRACE_LOADED_OBJECTS``, what ``ldd`` does), each both as listed and
    with symlinks resolved (``/lib64/ld-linux…`` is a link into the libraries' directory). A
    static binary lists nothing: it just answers ``--version``."""
    try:
        done = subprocess.run(  # noqa: S603 - a fixed binary path and a fixed flag
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**LAUNCH_ENV, "LD_TRACE_LOADED_OBJECTS": "1"},
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("could not list the libraries of %s: %s", binary, exc)
        return ()
    found: list[str] = []
    for path in LISTED_LIBRARY.findall(done.stdout):
        found += [os.path.realpath(os.path.dirname(path)), os.path.dirname(os.path.realpath(path))]
    return compact(found)


def system_mounts(root: str = "/", tools: Sequence[str] = ()) -> list[Mount]:
    """The merged-/usr links as symlinks (or ``/bin`` as a directory where it is one), the
    ``SYSTEM_DIRS`` this host has, and the library directories of ``tools`` (the launcher's
    programs that run inside: the shell and ``prlimit``), all read-only."""
    mounts: list[Mount] = []
    binds: list[str] = []
    for path in MERGED_USR_LINKS:
        host = Path(root) / path.lstrip("/")
        if host.is_symlink():
            mounts.append(Mount("symlink", os.readlink(host), path))
        elif path == "/bin" and host.is_dir():
            binds.append(path)
    binds += [d for d in SYSTEM_DIRS if (Path(root) / d.lstrip("/")).is_dir()]
    for tool in tools:
        binds += [os.path.dirname(os.path.realpath(tool)), *library_dirs(tool)]
    return mounts + [Mount("ro-bind", d, d) for d in compact(binds)]


def binds_for(path: str) -> tuple[str, tuple[str, ...]]:
    """(real binary, binds) for a command path: its directory and its libraries'. The sandbox
    runs the real binary, so the symlinks that led to it (``/etc/alternatives``, a virtualenv's
    ``bin``) are not needed inside."""
    real = os.path.realpath(path)
    return real, compact([os.path.dirname(real), *library_dirs(real)])


def data_dirs(spec: LanguageSpec, binary: str, timeout_s: float = 10.0) -> tuple[str, ...]:
    """The directories the interpreter names as its own data (``LanguageSpec.data_dirs_args``),
    its toolchain's (``extra_dirs``, its home), those that exist and are not host-private (a
    ``/etc/perl`` or ``/usr/local/lib/site_ruby`` in a search path is left out, not bound)."""
    found: list[str] = []
    if spec.data_dirs_args:
        output = _run_for_output([binary, *spec.data_dirs_args], timeout_s) or ""
        found += [os.path.realpath(ln.strip()) for ln in output.splitlines() if ln.startswith("/")]
    found += [os.path.realpath(d) for d in spec.extra_dirs]
    if spec.home_levels:
        home = binary
        for _ in range(spec.home_levels + 1):
            home = os.path.dirname(home)
        found += [home, *link_targets(home)]
    kept = [d for d in found if os.path.isdir(d) and not forbidden(d)]
    for dropped in sorted(set(found) - set(kept)):
        log.info("%s: not binding %s (absent or host-private)", spec.language, dropped)
    return compact(kept)


def link_targets(home: str, max_entries: int = 50_000) -> list[str]:
    """Where the symlinks under a toolchain's home lead outside it, as directories: Debian's
    GOROOT links ``src`` into ``/usr/share/go-1.19``, a JDK links its ``conf`` files into
    ``/etc/java-17-openjdk`` (``bind_audit.ALLOWED_DIRS``)."""
    targets: list[str] = []
    seen = 0
    for directory, subdirs, names in os.walk(home):
        for name in (*subdirs, *names):
            seen += 1
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                continue
            real = os.path.realpath(path)
            if real.startswith(home + "/") or not os.path.exists(real):
                continue
            targets.append(real if os.path.isdir(real) else os.path.dirname(real))
        if seen > max_entries:
            break
    return targets


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def _run_for_output(argv: list[str], timeout_s: float) -> str | None:
    binary = argv[0]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed interpreter path and fixed flags
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=LAUNCH_ENV,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("interpreter %s did not answer %s: %s", binary, argv[1:], exc)
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
    output = _run_for_output([real, *spec.version_args], timeout_s)
    parsed = parse_version(spec, output or "")
    if parsed is None:
        log.warning("could not read the version of %s from %r", real, output)
        return None
    full, short = parsed
    private = [b for b in binds if forbidden(b)]
    binds = compact([*binds, *data_dirs(spec, real, timeout_s)])
    if private:
        log.warning("skipping %s: it needs host-private directories %s", real, private)
        return None
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
        spec = LANGUAGES.get(language)
        full = {i.version: i.full_version for i in offered}
        runtimes.append(
            Runtime(
                language,
                versions,
                default_version=offered[0].version,
                script_file=spec.file_name if spec else "",
                compiled=spec.compiled if spec else False,
                full_versions=[full[v] for v in versions],
            )
        )
    return runtimes
