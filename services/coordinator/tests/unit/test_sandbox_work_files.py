"""Extra files and arguments of a run (issue 14): names refused at the boundary, the
directories files need, where they land on bwrap's command line, and the descriptors."""

from __future__ import annotations

import pytest

from integr8scode_coordinator.sandbox import SandboxLimits, WorkFile
from integr8scode_coordinator.sandbox.command import BubblewrapConfig, build_command
from integr8scode_coordinator.sandbox.descriptors import (
    FIRST_FILE_FD,
    MAX_FILE_FDS,
    PARENT_FD_BASE,
    ChildFiles,
    close_fds,
    file_fd,
)
from integr8scode_coordinator.sandbox.detect import Interpreter, Mount
from integr8scode_coordinator.sandbox.languages import LANGUAGES
from integr8scode_coordinator.sandbox.work_files import (
    MAX_FILES,
    args_problem,
    files_problem,
    name_problem,
    parent_dirs,
)

PYTHON = Interpreter("python", "3.11", "3.11.2", "/usr/bin/python3.11")
LIMITS = SandboxLimits(timeout_s=5, memory_mb=128)
CONFIG = BubblewrapConfig(
    bwrap="/usr/bin/bwrap",
    prlimit="/usr/bin/prlimit",
    setpriv=None,
    interpreters=(PYTHON,),
    mounts=(Mount("ro-bind", "/usr", "/usr"),),
)


def options(argv: list[str], flag: str) -> list[list[str]]:
    """Every occurrence of ``flag`` with its two arguments (or one, for ``--dir``)."""
    width = 1 if flag == "--dir" else 2
    return [argv[i + 1 : i + 1 + width] for i, arg in enumerate(argv) if arg == flag]


def sandbox_part(argv: list[str]) -> list[str]:
    start = argv.index(CONFIG.bwrap)
    return argv[start : argv.index("--", start)]


@pytest.mark.parametrize("name", ["in.txt", "data/in.txt", "a/b/c", ".hidden", "x..y", "é"])
def test_plain_names_and_relative_paths_are_accepted(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("..", ".."),
        ("../x", ".."),
        ("a/../../x", ".."),
        ("a\0b", "NUL"),
        ("a\nb", "control"),
        ("./a", "'.'"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_names_that_leave_the_directory_or_cannot_be_paths_are_refused(
    name: str, reason: str
) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert reason in problem


def test_a_file_may_not_clash_with_the_script_or_another_file() -> None:
    def problem(*names: str) -> str | None:
        return files_problem([WorkFile(n, b"") for n in names], "main.py")

    assert problem("main.py") == "file name 'main.py' clashes with the script's own file 'main.py'"
    assert "clashes" in (problem("main.py/x") or "")
    assert problem("a", "a") == "file name 'a' is given twice"
    assert problem("a", "a/b") == "file name 'a' is also the directory of 'a/b'"
    assert problem("a/b", "a/c", "main.js") is None
    assert "at most" in (problem(*(f"f{i}" for i in range(MAX_FILES + 1))) or "")


def test_an_argument_with_a_nul_is_refused() -> None:
    assert args_problem(["ok", "b\0d"]) == "argument 1 contains a NUL character"
    assert args_problem(["", "--x", "a b"]) is None


def test_parent_directories_come_first_and_once() -> None:
    assert parent_dirs(["a/b/c", "a/d", "e"]) == ["a", "a/b"]


def test_files_are_written_into_the_workdir_after_its_tmpfs_and_args_follow_the_script() -> None:
    argv = build_command(
        CONFIG,
        LANGUAGES["python"],
        PYTHON,
        LIMITS,
        work_files=["a/b/c.txt", "d"],
        args=["--flag", "x y"],
    )
    bwrap = sandbox_part(argv)
    assert options(bwrap, "--dir") == [["/work/a"], ["/work/a/b"]]
    assert options(bwrap, "--file") == [
        ["4", "/work/main.py"],
        [str(file_fd(0)), "/work/a/b/c.txt"],
        [str(file_fd(1)), "/work/d"],
    ]
    assert bwrap.index("--dir") > bwrap.index("/work")
    assert argv[-3:] == ["/work/main.py", "--flag", "x y"]


def test_extra_file_descriptors_never_collide_with_our_own_copies() -> None:
    assert file_fd(0) == FIRST_FILE_FD
    assert file_fd(MAX_FILE_FDS - 1) < PARENT_FD_BASE
    with pytest.raises(ValueError, match="at most"):
        file_fd(MAX_FILE_FDS)
    files = ChildFiles(stdin=b"", script=b"", passwd=b"", group=b"", extra_files=(b"one", b"two"))
    try:
        assert {file_fd(0), file_fd(1)} <= set(files.child)
        assert all(ours >= PARENT_FD_BASE for ours in files.child.values())
        closed = {a[1] for a in files.file_actions() if len(a) == 2}
        assert not closed & set(files.child)  # the extra files' numbers stay open
    finally:
        files.close_child_ends()
        close_fds([*files.readers.values(), files.release])
