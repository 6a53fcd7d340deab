"""sandbox.command: the command line of one run, and the rlimits it sets — built, not run."""

from __future__ import annotations

from integr8scode_coordinator.sandbox import SandboxLimits
from integr8scode_coordinator.sandbox.command import (
    SANDBOX_INIT,
    BubblewrapConfig,
    build_command,
    data_backstop_mb,
    rlimit_args,
)
from integr8scode_coordinator.sandbox.detect import Interpreter, Mount
from integr8scode_coordinator.sandbox.languages import LANGUAGES

PYTHON = Interpreter("python", "3.11", "3.11.2", "/usr/bin/python3.11")
NODE = Interpreter("javascript", "20", "20.1.0", "/opt/node/bin/node", ("/opt/node",))
LIMITS = SandboxLimits(timeout_s=5, memory_mb=128, cpu_time_s=2.5)
CONFIG = BubblewrapConfig(
    bwrap="/usr/bin/bwrap",
    prlimit="/usr/bin/prlimit",
    setpriv="/usr/bin/setpriv",
    interpreters=(PYTHON, NODE),
    mounts=(
        Mount("ro-bind", "/usr", "/usr"),
        Mount("symlink", "usr/bin", "/bin"),
        Mount("ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"),
    ),
)


def options(argv: list[str], flag: str) -> list[list[str]]:
    """Every occurrence of ``flag`` with the arguments that follow it (up to the next flag)."""
    found = []
    for i, arg in enumerate(argv):
        if arg == flag:
            rest = []
            for following in argv[i + 1 :]:
                if following.startswith("--"):
                    break
                rest.append(following)
            found.append(rest)
    return found


def sandbox_part(argv: list[str]) -> list[str]:
    """bwrap's own options: from bwrap to its ``--``."""
    start = argv.index(CONFIG.bwrap)
    return argv[start : argv.index("--", start)]


def test_the_chain_drops_to_nobody_then_bwrap_then_init_then_rlimits() -> None:
    argv = build_command(CONFIG, LANGUAGES["python"], PYTHON, LIMITS)
    assert argv[:5] == [
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ]
    assert argv[5] == "/usr/bin/bwrap"
    tail = argv[argv.index("--", 6) + 1 :]
    assert tail[:4] == ["/bin/sh", "-c", SANDBOX_INIT, "sandbox-init"]
    assert tail[4] == "/usr/bin/prlimit"
    assert tail[-6:] == ["/usr/bin/python3.11", "-I", "-S", "-B", "-u", "/work/main.py"]


def test_every_namespace_is_new_and_nothing_is_inherited() -> None:
    bwrap = sandbox_part(build_command(CONFIG, LANGUAGES["python"], PYTHON, LIMITS))
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--as-pid-1",
    ):
        assert flag in bwrap, flag
    assert options(bwrap, "--cap-drop") == [["ALL"]]
    assert options(bwrap, "--uid") == [["65534"]]
    assert options(bwrap, "--hostname") == [["sandbox"]]
    assert "--share-net" not in bwrap
    assert options(bwrap, "--setenv") == [
        ["PATH", "/usr/local/bin:/usr/bin:/bin"],
        ["HOME", "/work"],
        ["LANG", "C.UTF-8"],
    ]


def test_only_system_dirs_and_the_interpreters_prefix_are_bound_read_only() -> None:
    bwrap = sandbox_part(build_command(CONFIG, LANGUAGES["javascript"], NODE, LIMITS))
    binds = [src for src, _ in options(bwrap, "--ro-bind")]
    assert binds == ["/usr", "/etc/ld.so.cache", "/opt/node"]
    assert options(bwrap, "--bind") == []  # nothing of the host is writable
    assert options(bwrap, "--dev-bind") == []
    private_dirs = ("/", "/root", "/home", "/work", "/tmp", "/etc", "/etc/shadow", "/proc", "/sys")  # noqa: S108
    for private in private_dirs:
        assert private not in binds


def test_writable_space_is_size_limited_tmpfs_and_the_rest_is_read_only() -> None:
    bwrap = sandbox_part(build_command(CONFIG, LANGUAGES["python"], PYTHON, LIMITS))
    size = str(64 * 1024 * 1024)
    assert options(bwrap, "--tmpfs") == [["/dev/shm"], ["/tmp"], ["/work"]]  # noqa: S108
    assert options(bwrap, "--size") == [[size]] * 3
    assert options(bwrap, "--remount-ro") == [["/dev"], ["/"]]
    assert bwrap.index("/") > bwrap.index("--file")  # the root is sealed last
    assert options(bwrap, "--chdir") == [["/work"]]


def test_the_script_and_identity_files_come_from_descriptors() -> None:
    bwrap = sandbox_part(build_command(CONFIG, LANGUAGES["python"], PYTHON, LIMITS))
    assert options(bwrap, "--file") == [["4", "/work/main.py"]]
    assert options(bwrap, "--ro-bind-data") == [["5", "/etc/passwd"], ["6", "/etc/group"]]
    assert options(bwrap, "--json-status-fd") == [["3"]]
    assert bwrap.index("--file") > bwrap.index("/work")  # written into the fresh tmpfs


def test_cgroups_are_joined_before_anything_else_runs() -> None:
    procs = ["/sys/fs/cgroup/memory/x/cgroup.procs", "/sys/fs/cgroup/pids/x/cgroup.procs"]
    argv = build_command(CONFIG, LANGUAGES["python"], PYTHON, LIMITS, cgroup_procs=procs)
    assert argv[:4] == ["/bin/sh", "-c", argv[2], "sandbox-launch"]
    assert argv[4:7] == [*procs, "--"]
    assert argv[7] == "/usr/bin/setpriv"


def test_without_root_there_is_no_setpriv() -> None:
    config = BubblewrapConfig(**{**CONFIG.__dict__, "setpriv": None})
    argv = build_command(config, LANGUAGES["python"], PYTHON, LIMITS)
    assert argv[0] == "/usr/bin/bwrap"


def test_rlimits_without_a_memory_cgroup() -> None:
    assert rlimit_args(LIMITS, pids_cgroup=False) == [
        "--core=0",
        f"--fsize={16 * 1024 * 1024}",
        "--nofile=64",
        "--nproc=65",  # the sandbox's pid 1 counts too
        f"--data={640 * 1024 * 1024}",  # a backstop 512 MiB above the watched limit
        "--cpu=3:4",  # whole seconds, rounded up; SIGKILL a second after SIGXCPU
    ]


def test_with_a_memory_cgroup_no_rlimit_limits_memory() -> None:
    """The cgroup holds resident memory; an address-space or data rlimit would refuse mmaps
    and thread stacks that are never touched."""
    args = rlimit_args(LIMITS, pids_cgroup=True, memory_cgroup=True)
    assert not [a for a in args if a.startswith(("--as", "--data", "--rss", "--memlock"))]
    argv = build_command(
        CONFIG, LANGUAGES["javascript"], NODE, LIMITS, pids_cgroup=True, memory_cgroup=True
    )
    assert not [a for a in argv if a.startswith(("--as=", "--data="))]


def test_the_data_backstop_is_far_above_the_limit() -> None:
    assert data_backstop_mb(SandboxLimits(5, 16)) == 528
    assert data_backstop_mb(SandboxLimits(5, 128)) == 640
    assert data_backstop_mb(SandboxLimits(5, 1024)) == 2048


def test_with_a_pids_cgroup_the_nproc_rlimit_is_only_a_backstop() -> None:
    args = rlimit_args(LIMITS, pids_cgroup=True)
    assert "--nproc=66" in args


def test_no_cpu_rlimit_without_a_cpu_limit() -> None:
    limits = SandboxLimits(timeout_s=5, memory_mb=64)
    assert not any(a.startswith("--cpu") for a in rlimit_args(limits, pids_cgroup=False))
