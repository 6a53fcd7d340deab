"""The host paths bound into the sandbox, checked once at start: none can hold a socket.

A Unix socket file is the one thing in a read-only bind a sandboxed program could still use
against the host (``connect`` needs write permission on the socket, not a writable mount), so
the bind set is made so that none can be in it:

- by construction: only read-only binds (``ro-bind``) and symlinks, only of the directories
  programs need (``detect``), never anything under ``FORBIDDEN_ROOTS`` — where
  daemons put their sockets (``/run``, ``/var``, ``/tmp``), users their files, and the kernel
  its interfaces; ``/proc`` and ``/dev`` inside are bubblewrap's own, fresh;
- checked at start: every bound tree is walked (submounts included, as bubblewrap binds them
  recursively; symlinks not followed, as inside they resolve within the sandbox): a socket file
  anywhere, or a directory that anyone but root may write (where a socket could be created
  later), refuses the start with the paths named. So after the check only root could add one.

The walk is bounded (``MAX_ENTRIES``): a bind set that large is a mistake to fix, not to wait for.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from integr8scode_coordinator.sandbox.model import SandboxUnavailableError

FORBIDDEN_ROOTS = (
    "/boot",
    "/dev",
    "/etc",  # only chosen files are bound (ld.so.cache), never the directory
    "/home",
    "/media",
    "/mnt",
    "/proc",
    "/root",
    "/run",
    "/srv",
    "/sys",
    "/tmp",  # noqa: S108 - named to be refused
    "/var",
)
# Single files under a forbidden root that are bound on purpose: the loader's library index.
ALLOWED_FILES = ("/etc/ld.so.cache",)
# Directories under a forbidden root bound on purpose (walked like every bind): a JDK's
# configuration, which its ``lib/jvm.cfg`` and ``conf`` link to (Debian's openjdk packages).
ALLOWED_DIRS = re.compile(r"/etc/java-\d+-openjdk(/.*)?")
READ_ONLY_KINDS = ("ro-bind", "symlink")
MAX_ENTRIES = 100_000
SHOWN = 5  # problems named in the error


def forbidden(path: str, roots: Sequence[str] = FORBIDDEN_ROOTS) -> bool:
    """``/`` itself, or a path under a root the sandbox must never see (but ``ALLOWED_FILES``)."""
    path = os.path.normpath(path)
    if path in ALLOWED_FILES or ALLOWED_DIRS.fullmatch(path):
        return False
    return path == "/" or any(path == r or path.startswith(r + "/") for r in roots)


def compact(paths: Iterable[str]) -> tuple[str, ...]:
    """Sorted, without duplicates and without paths inside another one of the set."""
    kept: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return tuple(kept)


class BindMount(Protocol):
    """What ``audit`` needs of one bubblewrap mount (``detect.Mount`` has these)."""

    @property
    def kind(self) -> str: ...

    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class AuditReport:
    roots: tuple[str, ...]
    entries: int
    elapsed_ms: float


def audit(
    mounts: Sequence[BindMount],
    *,
    max_entries: int = MAX_ENTRIES,
    trusted_uids: frozenset[int] = frozenset({0}),
    forbidden_roots: Sequence[str] = FORBIDDEN_ROOTS,
) -> AuditReport:
    """Walk every bound source; raise ``SandboxUnavailableError`` naming what is wrong.
    Directories may be owned only by ``trusted_uids`` (root) and writable only by their owner."""
    started = time.perf_counter()
    problems: list[str] = []
    roots: list[str] = []
    for mount in mounts:
        if mount.kind not in READ_ONLY_KINDS:
            problems.append(f"{mount.source}: a {mount.kind} mount (only read-only binds)")
        elif mount.kind != "symlink":
            roots.append(mount.source)
    for root in roots:
        if forbidden(root, forbidden_roots):
            problems.append(f"{root}: under a host-private root")
    entries = 0
    if not problems:
        entries = _walk(compact(roots), problems, max_entries, trusted_uids)
    if problems:
        shown = "; ".join(problems[:SHOWN])
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise SandboxUnavailableError(
            f"the sandbox's read-only binds could expose the host: {shown}{more}"
        )
    return AuditReport(compact(roots), entries, (time.perf_counter() - started) * 1000)


def _walk(
    roots: Sequence[str], problems: list[str], max_entries: int, trusted: frozenset[int]
) -> int:
    entries = 0
    pending = list(roots)
    for root in roots:
        try:
            top = os.lstat(root)
        except OSError as exc:
            problems.append(f"{root}: {exc.strerror}")
            continue
        _check(root, top, problems, trusted)
    while pending:
        directory = pending.pop()
        try:
            scan = os.scandir(directory)
        except NotADirectoryError:
            continue  # a bound file
        except OSError as exc:
            problems.append(f"{directory}: can't be checked ({exc.strerror})")
            continue
        with scan:
            for entry in scan:
                entries += 1
                if entries > max_entries:
                    problems.append(
                        f"{', '.join(roots)}: more than {max_entries} entries to check; bind less"
                    )
                    return entries
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone since it was listed
                _check(entry.path, info, problems, trusted)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
    return entries


def _check(path: str, info: os.stat_result, problems: list[str], trusted: frozenset[int]) -> None:
    if stat.S_ISSOCK(info.st_mode):
        problems.append(f"{path}: a socket")
    elif stat.S_ISDIR(info.st_mode) and (info.st_uid not in trusted or info.st_mode & 0o022):
        problems.append(
            f"{path}: a directory uid {info.st_uid} or others may write "
            f"(mode {stat.filemode(info.st_mode)}), where a socket could appear"
        )
