"""sandbox.seccomp: the syscall filter compiles, bubblewrap gets it, and the coordinator
container's seccomp profile denies exactly the same calls."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from integr8scode_coordinator.sandbox import SandboxLimits
from integr8scode_coordinator.sandbox.command import BubblewrapConfig, build_command
from integr8scode_coordinator.sandbox.descriptors import SECCOMP_FD, ChildFiles
from integr8scode_coordinator.sandbox.detect import Interpreter, Mount
from integr8scode_coordinator.sandbox.languages import LANGUAGES
from integr8scode_coordinator.sandbox.seccomp import DENIED_SYSCALLS, compile_filter

ROOT = Path(__file__).resolve().parents[4]
PROFILE = ROOT / "deploy" / "containers" / "seccomp-coordinator.json"
PYTHON = Interpreter("python", "3.11", "3.11.2", "/usr/bin/python3.11")
CONFIG = BubblewrapConfig(
    bwrap="/usr/bin/bwrap",
    prlimit="/usr/bin/prlimit",
    setpriv=None,
    interpreters=(PYTHON,),
    mounts=(Mount("ro-bind", "/usr", "/usr"),),
    seccomp=b"\x00" * 8,
)
LIMITS = SandboxLimits(timeout_s=5, memory_mb=128)


def test_the_filter_compiles_to_whole_bpf_instructions() -> None:
    program = compile_filter()
    assert len(program) % 8 == 0
    # one compare-and-return per denied call at least, plus the architecture checks
    assert len(program) // 8 > len(DENIED_SYSCALLS)


def test_a_shorter_list_makes_a_shorter_program() -> None:
    assert len(compile_filter(frozenset({"keyctl"}))) < len(compile_filter())


def test_bubblewrap_reads_the_filter_from_its_descriptor_before_the_program_starts() -> None:
    argv = build_command(CONFIG, LANGUAGES["python"], PYTHON, LIMITS)
    at = argv.index("--seccomp")
    assert argv[at + 1] == str(SECCOMP_FD)
    assert at < argv.index("--as-pid-1")  # a bwrap option, applied to pid 1 and all it starts


def test_no_filter_no_option() -> None:
    config = dataclasses.replace(CONFIG, seccomp=None)
    assert "--seccomp" not in build_command(config, LANGUAGES["python"], PYTHON, LIMITS)


def test_the_child_gets_the_filter_at_its_number_and_nothing_beyond() -> None:
    files = ChildFiles(stdin=b"", script=b"print(1)", passwd=b"", group=b"", seccomp=b"\x01" * 8)
    try:
        assert SECCOMP_FD in files.child
        assert all(ours > SECCOMP_FD for ours in files.child.values())  # no dup2 clobbers one
    finally:
        files.close_child_ends()
        for fd in [*files.readers.values(), files.release]:
            os.close(fd)


def test_the_container_profile_denies_exactly_the_sandbox_list() -> None:
    profile = json.loads(PROFILE.read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    (rule,) = profile["syscalls"]
    assert rule["action"] == "SCMP_ACT_ERRNO"
    assert rule["errnoRet"] == 1  # EPERM, as the sandbox's own filter answers
    assert set(rule["names"]) == DENIED_SYSCALLS
