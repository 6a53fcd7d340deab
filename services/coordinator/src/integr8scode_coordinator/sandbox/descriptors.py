"""What one run's launcher gets at fixed descriptor numbers, and nothing else.

The chain (``command.build_command``) is told these numbers: bwrap reads the script, passwd,
group and the seccomp filter from memfds that only this one child sees, and writes its status
record to a pipe; the sandbox's pid 1 holds the program's stdin, stdout and stderr and the
release pipe. ``ChildFiles`` makes them; ``process.SandboxProcess`` hands them to
``posix_spawn`` and keeps the parent's ends. Every other descriptor is closed in the child.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable

# Descriptors as the launcher chain sees them. bwrap consumes 3-6 and 10 (the seccomp filter);
# pid 1 gets 0, 7, 8, 9 and hands the program 0 (stdin), 8 as stdout and 9 as stderr. 1 and 2
# carry only the launcher's own diagnostics (bwrap's setup errors), so they can't be confused
# with the program's output. Everything from FIRST_CLOSED_FD up is closed in the child.
STATUS_FD, SCRIPT_FD, PASSWD_FD, GROUP_FD, RELEASE_FD, STDOUT_FD, STDERR_FD = 3, 4, 5, 6, 7, 8, 9
SECCOMP_FD = 10
FIRST_CLOSED_FD = 11
# Extra files of the working directory (``work_files``): bwrap reads file i from
# FIRST_FILE_FD + i (and closes it). Our own copies live from PARENT_FD_BASE up, above every
# number a child may get, so no dup2 of the spawn overwrites a source it still needs.
FIRST_FILE_FD = FIRST_CLOSED_FD
MAX_FILE_FDS = 64
# The compile phase writes what it built (a tar of ``languages.BUILD_DIR``) to a memfd here.
ARTIFACT_FD = FIRST_FILE_FD + MAX_FILE_FDS
PARENT_FD_BASE = ARTIFACT_FD + 1


def file_fd(index: int) -> int:
    """The launcher's descriptor of the ``index``-th extra file."""
    if not 0 <= index < MAX_FILE_FDS:
        raise ValueError(f"at most {MAX_FILE_FDS} extra files")
    return FIRST_FILE_FD + index


class ChildFiles:
    """What one launcher gets, at fixed numbers (see ``STATUS_FD``…): memfds with stdin, the
    script, passwd, group and (when there is one) the seccomp filter; the read end of the
    release pipe; the write ends of the output, diagnostics and status pipes. The parent keeps
    the other ends."""

    def __init__(
        self,
        *,
        stdin: bytes,
        script: bytes,
        passwd: bytes,
        group: bytes,
        seccomp: bytes | None = None,
        extra_files: tuple[bytes, ...] = (),
        artifact: bool = False,
    ) -> None:
        self.child: dict[int, int] = {}  # child's fd → ours
        self.readers: dict[str, int] = {}
        self.release = -1  # closing it lets the sandbox's pid 1 exit
        self.artifact = -1  # ours of the compile phase's output memfd (``read_artifact``)
        try:
            if artifact:
                fd = _memfd("artifact", b"")
                self.artifact = _high(os.dup(fd))
                self.child[ARTIFACT_FD] = fd
            self.child[0] = _memfd("stdin", stdin, read_only=True)
            self.child[SCRIPT_FD] = _memfd("script", script)
            self.child[PASSWD_FD] = _memfd("passwd", passwd)
            self.child[GROUP_FD] = _memfd("group", group)
            if seccomp is not None:
                self.child[SECCOMP_FD] = _memfd("seccomp", seccomp)
            for index, content in enumerate(extra_files):
                self.child[file_fd(index)] = _memfd("file", content)
            for name, child_fd in (
                ("stdout", STDOUT_FD),
                ("stderr", STDERR_FD),
                ("diagnostics", 1),
                ("status", STATUS_FD),
            ):
                r, w = os.pipe()
                os.set_blocking(r, False)
                self.readers[name] = r
                self.child[child_fd] = _high(w)
            self.child[2] = _high(os.dup(self.child[1]))
            r, self.release = os.pipe()
            self.child[RELEASE_FD] = _high(r)
        except BaseException:
            self.close_child_ends()
            close_fds([*self.readers.values(), self.release, self.artifact])
            raise

    def read_artifact(self, limit: int) -> bytes:
        """What the compile phase wrote at ``ARTIFACT_FD`` (at most ``limit`` bytes: its
        RLIMIT_FSIZE bounds it already), then let it go."""
        if self.artifact < 0:
            return b""
        try:
            os.lseek(self.artifact, 0, os.SEEK_SET)
            chunks: list[bytes] = []
            size = 0
            while size <= limit and (chunk := os.read(self.artifact, 1 << 20)):
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            close_fds([self.artifact])
            self.artifact = -1

    def file_actions(self) -> list[tuple[int, ...]]:
        """dup2 ours onto the child's numbers, then close every other descriptor from
        ``FIRST_CLOSED_FD`` up (the extra files' numbers excepted): this process may hold
        inheritable descriptors it was started with, and they must not reach the sandbox."""
        actions: list[tuple[int, ...]] = [
            (os.POSIX_SPAWN_DUP2, ours, theirs) for theirs, ours in self.child.items()
        ]
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= FIRST_CLOSED_FD and int(name) not in self.child:
                actions.append((os.POSIX_SPAWN_CLOSE, int(name)))
        return actions

    def close_child_ends(self) -> None:
        """After the spawn the child holds its own copies; ours would keep the pipes open."""
        close_fds(self.child.values())
        self.child.clear()


def _high(fd: int) -> int:
    """The same file at a descriptor >= ``PARENT_FD_BASE``, close-on-exec, so
    ``posix_spawn``'s dup2 actions onto the child's numbers never overwrite a source they still
    need."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, PARENT_FD_BASE)
    os.close(fd)
    return high


def _memfd(name: str, data: bytes, *, read_only: bool = False) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        if read_only:  # the program may read its stdin, not rewrite it
            ro = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
            os.close(fd)
            fd = ro
        fd = _high(fd)  # a low number could be the target of another dup2 of the spawn
    except BaseException:
        os.close(fd)
        raise
    return _high(fd)


def close_fds(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
