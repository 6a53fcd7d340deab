"""The command line of one run: the launcher chain, from joining its cgroups to the interpreter.

One run is one process chain, started with ``posix_spawn`` (no ``preexec_fn``, safe in a
threaded process) in a process group of its own::

    [sh: join cgroups] → [setpriv: host uid 65534] → bwrap → sh (pid 1) → prlimit → interpreter

- ``sh`` writes its pid into the run's ``cgroup.procs`` files and execs on, so every process of
  the run is inside the cgroups from its first instruction (only when cgroups are usable).
- ``setpriv`` (only when the coordinator runs as root) drops to host uid/gid 65534 before bwrap,
  so the user namespace maps the sandbox's uid to an unprivileged host uid rather than to root.
- ``bwrap`` unshares every namespace (user, pid, net, ipc, uts, cgroup, mount), drops all
  capabilities, forbids nested user namespaces, clears the environment, binds only the
  directories programs need read-only (``detect``; checked by ``bind_audit``: no
  socket can be in them), mounts a fresh ``/proc`` and
  a minimal ``/dev`` (read-only, plus a size-limited ``/dev/shm``), size-limited tmpfs at
  ``/work`` (the working directory) and ``/tmp``, a synthetic ``/etc/passwd`` and ``/etc/group``,
  remounts ``/`` read-only, and installs the syscall filter (``seccomp``) last, so it holds for
  pid 1 and every process of the run. The script and stdin come from memfds handed to this one child
  only (every other descriptor is closed in the child), so no other run — and nothing on the
  host's disk — ever sees them.
- ``sh`` is the sandbox's pid 1 (``SANDBOX_INIT``): it runs the program as its child, reaps
  orphans, and exits only when the runner releases it — once every process of the run has
  closed stdout and stderr. A script's background processes are part of its run, and a fork
  bomb whose first shell returns at once still meets the process limit.
- ``prlimit`` sets the rlimits *inside* the new user namespace, where RLIMIT_NPROC counts only
  this run's processes: CPU seconds (a per-process backstop: ``process`` holds the whole
  run's CPU), file size, open files, processes, no core files, and, only without a memory
  cgroup, a far-off RLIMIT_DATA as a backstop to the memory watch.

What the chain gets at its fixed descriptors: ``descriptors``. Spawning it, watching it, killing it
and measuring it: ``process``. The runner that puts a run together: ``bubblewrap``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from integr8scode_coordinator.sandbox.descriptors import (
    GROUP_FD,
    PASSWD_FD,
    SCRIPT_FD,
    SECCOMP_FD,
    STATUS_FD,
    file_fd,
)
from integr8scode_coordinator.sandbox.detect import Interpreter, Mount
from integr8scode_coordinator.sandbox.languages import WORKDIR, LanguageSpec
from integr8scode_coordinator.sandbox.model import MIB, SandboxLimits
from integr8scode_coordinator.sandbox.work_files import parent_dirs

NOBODY = 65534
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
PASSWD = f"sandbox:x:{NOBODY}:{NOBODY}:sandbox:{WORKDIR}:/bin/sh\n".encode()
GROUP = f"sandbox:x:{NOBODY}:\n".encode()
DATA_BACKSTOP_HEADROOM_MB = 512
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
# pid 1 of the sandbox. bwrap's own reaper won't do: its monitor exits as soon as the reaper
# reports the exit code, before reaping it, which loses the run's CPU time and peak RSS to
# wait4(). This shell keeps its diagnostics out of the program's stderr (no "Killed" lines),
# runs the program, lets go of stdout/stderr, and waits for the runner's release (EOF on fd 7).
SANDBOX_INIT = (
    'exec 2>/dev/null 1>&8 8>&-; (exec "$@" 2>&9 9>&- 7<&-); rc=$?; '
    "exec 1>&- 9>&-; read _ <&7; exit $rc"
)


@dataclass(frozen=True)
class BubblewrapConfig:
    bwrap: str
    prlimit: str
    setpriv: str | None  # set when we are root: drop to host uid 65534 before bwrap
    interpreters: tuple[Interpreter, ...]
    mounts: tuple[Mount, ...]
    seccomp: bytes | None = None  # the compiled syscall filter (``seccomp``)
    shell: str = "/bin/sh"
    flood_factor: int = 10  # stop a program after this many times the output cap
    poll_interval_s: float = 0.05  # process tree CPU and cgroup counters, while a run is going
    sample_interval_s: float = 0.02  # the same plus its memory, when there is no memory cgroup
    kill_grace_s: float = 1.0  # after SIGKILL to pid 1, before SIGKILL to the process group


def data_backstop_mb(limits: SandboxLimits) -> int:
    """RLIMIT_DATA of each process when no memory cgroup holds the run: far enough above
    ``memory_mb`` that thread stacks (8 MiB each) and sparse mappings of real programs fit, close
    enough that one process can't get far past the limit between two samples of the watch."""
    return max(2 * limits.memory_mb, limits.memory_mb + DATA_BACKSTOP_HEADROOM_MB)


def rlimit_args(
    limits: SandboxLimits, *, pids_cgroup: bool, memory_cgroup: bool = False
) -> list[str]:
    """``prlimit`` options for a run: soft = hard, except CPU (SIGXCPU first, SIGKILL 1s later).

    RLIMIT_NPROC counts the sandbox's pid 1 too, hence +1. With a pids cgroup (which also counts
    bwrap's monitor, so ``max_processes + 2``) it is a backstop one above, so the cgroup refuses
    first and its counter records that it did. Memory: with a memory cgroup, none (the cgroup
    holds the whole run's resident memory; an address-space limit would refuse mmaps and thread
    stacks a program never touches); without one, RLIMIT_DATA as a backstop to the watch
    (``data_backstop_mb``). RLIMIT_CPU is per process: the watch holds the whole run's CPU."""
    nproc = limits.max_processes + (2 if pids_cgroup else 1)
    args = [
        "--core=0",
        f"--fsize={limits.max_file_size_mb * MIB}",
        f"--nofile={limits.max_open_files}",
        f"--nproc={nproc}",
    ]
    if not memory_cgroup:
        args.append(f"--data={data_backstop_mb(limits) * MIB}")
    if limits.cpu_time_s:
        soft = max(1, math.ceil(limits.cpu_time_s))
        args.append(f"--cpu={soft}:{soft + 1}")
    return args


def build_command(
    config: BubblewrapConfig,
    spec: LanguageSpec,
    interpreter: Interpreter,
    limits: SandboxLimits,
    *,
    cgroup_procs: Sequence[str] = (),
    pids_cgroup: bool = False,
    memory_cgroup: bool = False,
    files: bool = True,
    command: Sequence[str] | None = None,
    seccomp_fd: int | None = SECCOMP_FD,
    work_files: Sequence[str] = (),
    executables: Collection[str] = (),
    args: Sequence[str] = (),
) -> list[str]:
    """The whole argv of one run. With ``files`` the child must hold the script, passwd, group
    and status descriptors at ``SCRIPT_FD``, ``PASSWD_FD``, ``GROUP_FD`` and ``STATUS_FD``;
    with a filter in the config, the filter at ``seccomp_fd``; the content of the extra file
    ``work_files[i]`` (a name ``work_files.files_problem`` accepted) at ``file_fd(i)``; those
    named in ``executables`` (what a compile phase built) are written mode 0555.
    ``args`` follow the script's path on the program's command line."""
    c = config
    tmpfs = str(limits.tmpfs_size_mb * MIB)
    argv: list[str] = []
    if cgroup_procs:
        argv += [c.shell, "-c", JOIN_CGROUPS, "sandbox-launch", *cgroup_procs, "--"]
    if c.setpriv:
        argv += [c.setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    argv += [
        c.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        "--uid", str(NOBODY),
        "--gid", str(NOBODY),
        "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", SANDBOX_PATH,
        "--setenv", "HOME", WORKDIR,
        "--setenv", "LANG", "C.UTF-8",
    ]  # fmt: skip
    for mount in c.mounts:
        argv += [f"--{mount.kind}", mount.source, mount.dest]
    bound = [m.source for m in c.mounts if m.kind == "ro-bind"]
    for directory in interpreter.binds:
        if not any(directory == b or directory.startswith(b + "/") for b in bound):
            argv += ["--ro-bind", directory, directory]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--remount-ro", "/dev",
        "--size", tmpfs, "--tmpfs", "/dev/shm",  # noqa: S108 - inside the sandbox
        "--size", tmpfs, "--tmpfs", "/tmp",  # noqa: S108 - a private tmpfs
        "--size", tmpfs, "--tmpfs", WORKDIR,
        "--chdir", WORKDIR,
    ]  # fmt: skip
    if files:
        argv += [
            "--ro-bind-data", str(PASSWD_FD), "/etc/passwd",
            "--ro-bind-data", str(GROUP_FD), "/etc/group",
            "--file", str(SCRIPT_FD), spec.script_path,
            "--json-status-fd", str(STATUS_FD),
        ]  # fmt: skip
        for directory in parent_dirs(work_files):
            argv += ["--dir", f"{WORKDIR}/{directory}"]
        for index, name in enumerate(work_files):
            if name in executables:
                argv += ["--perms", "0555"]
            argv += ["--file", str(file_fd(index)), f"{WORKDIR}/{name}"]
    if c.seccomp is not None and seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    rlimits = rlimit_args(limits, pids_cgroup=pids_cgroup, memory_cgroup=memory_cgroup)
    argv += ["--remount-ro", "/", "--as-pid-1", "--"]
    if files:
        argv += [c.shell, "-c", SANDBOX_INIT, "sandbox-init"]
    argv += [c.prlimit, *rlimits, "--"]
    return argv + list(command or [*spec.command(interpreter.path, limits), *args])
