"""sandbox.languages and sandbox.detect: the language table, version parsing and
matching, and what an interpreter needs bound (host binaries are asked for their libraries and
versions; nothing runs in a sandbox here)."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from integr8scode_coordinator.sandbox import Runtime, SandboxLimits
from integr8scode_coordinator.sandbox.bind_audit import forbidden
from integr8scode_coordinator.sandbox.detect import (
    Interpreter,
    Mount,
    binds_for,
    data_dirs,
    library_dirs,
    probe,
    runtimes_of,
    system_mounts,
)
from integr8scode_coordinator.sandbox.languages import (
    LANGUAGES,
    match_version,
    node_heap_mb,
    parse_version,
)

LIMITS = SandboxLimits(timeout_s=5, memory_mb=128)


@pytest.mark.parametrize(
    ("language", "output", "expected"),
    [
        ("python", "Python 3.11.2\n", ("3.11.2", "3.11")),
        ("python", "Python 3.13.0rc1", ("3.13.0", "3.13")),
        ("javascript", "v20.20.2\n", ("20.20.2", "20")),
        (
            "bash",
            "GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)\nCopyright ...",
            ("5.2.15", "5.2"),
        ),
        ("python", "command not found", None),
    ],
)
def test_versions_are_parsed(language: str, output: str, expected: tuple[str, str] | None) -> None:
    assert parse_version(LANGUAGES[language], output) == expected


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("", "3.11"),  # the default
        ("3.12", "3.12"),  # exact
        ("3.11.2", "3.11"),  # more precise: the patch level is not promised
        ("3", "3.12"),  # less precise: the newest that fits
        ("v3.12", "3.12"),
        ("2.7", None),
        ("3.x", None),
        ("4", None),
    ],
)
def test_versions_match(requested: str, expected: str | None) -> None:
    assert match_version(requested, ["3.12", "3.11"], default="3.11") == expected


def test_each_language_runs_its_script_file_isolated() -> None:
    assert LANGUAGES["python"].command("/usr/bin/python3.11", LIMITS) == [
        "/usr/bin/python3.11",
        "-I",
        "-S",
        "-B",
        "-u",
        "/work/main.py",
    ]
    assert LANGUAGES["javascript"].command("/usr/bin/node", LIMITS) == [
        "/usr/bin/node",
        "--max-old-space-size=96",
        "/work/main.js",
    ]
    assert LANGUAGES["bash"].command("/usr/bin/bash", LIMITS) == [
        "/usr/bin/bash",
        "--noprofile",
        "--norc",
        "/work/main.sh",
    ]


def test_node_heap_is_three_quarters_of_memory_with_a_floor() -> None:
    assert node_heap_mb(SandboxLimits(5, 512)) == 384
    assert node_heap_mb(SandboxLimits(5, 16)) == 16


# -- detection helpers -----------------------------------------------------------------------


def test_system_mounts_follow_the_hosts_merged_usr(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "share" / "zoneinfo").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib").mkdir()  # not merged on this fake host: its libraries come with the tools
    assert system_mounts(str(tmp_path)) == [
        Mount("symlink", "usr/bin", "/bin"),
        Mount("ro-bind", "/usr/bin", "/usr/bin"),
        Mount("ro-bind", "/usr/share/zoneinfo", "/usr/share/zoneinfo"),
    ]


def _libc_dir() -> str:
    """Where this process's libc really is (what the loader lists for any dynamic binary)."""
    with open("/proc/self/maps") as f:
        path = next(line.split()[-1] for line in f if "/libc.so" in line or "/libc-" in line)
    return os.path.dirname(os.path.realpath(path))


def test_the_tools_bring_their_library_directories_and_never_a_whole_tree() -> None:
    binds = [m.source for m in system_mounts(tools=("/bin/sh",)) if m.kind == "ro-bind"]
    assert _libc_dir() in binds
    for whole in ("/", "/usr", "/usr/lib", "/usr/share", "/lib", "/etc", "/var", "/run"):
        assert whole not in binds


def test_library_dirs_list_what_the_loader_loads() -> None:
    dirs = library_dirs(os.path.realpath(sys.executable))
    assert _libc_dir() in dirs
    assert all(os.path.isabs(d) and os.path.isdir(d) for d in dirs)


def test_a_binary_brings_its_own_directory_and_libraries(tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "sh").symlink_to(os.path.realpath("/bin/sh"))  # like a virtualenv's python3
    real, binds = binds_for(str(venv / "sh"))
    assert real == os.path.realpath("/bin/sh")
    assert os.path.dirname(real) in binds
    assert str(venv) not in binds  # the symlink's directory stays outside
    assert _libc_dir() in binds


def test_python_names_its_standard_library() -> None:
    python = os.path.realpath(sys.executable)
    dirs = data_dirs(LANGUAGES["python"], python)
    stdlib = os.path.realpath(sysconfig.get_path("stdlib"))
    # A host-private stdlib (a pyenv under /root) is left out, never bound.
    assert (stdlib in dirs) is not forbidden(stdlib)
    assert data_dirs(LANGUAGES["bash"], "/bin/sh") == ()


def test_search_paths_keep_only_existing_public_directories() -> None:
    if not os.path.exists("/usr/bin/perl"):
        pytest.skip("no perl")
    dirs = data_dirs(LANGUAGES["perl"], "/usr/bin/perl")
    assert dirs, "perl names its library directories"
    assert all(os.path.isdir(d) and not forbidden(d) for d in dirs)
    assert "/etc/perl" not in dirs  # in @INC, but host-private


def test_a_toolchain_home_brings_what_its_links_lead_to() -> None:
    go = "/usr/lib/go-1.19/bin/go"
    if not os.path.exists(go):
        pytest.skip("no Debian golang-1.19")
    dirs = data_dirs(LANGUAGES["go"], go)
    assert "/usr/lib/go-1.19" in dirs
    assert "/usr/share/go-1.19/src" in dirs  # GOROOT/src is a link there


def test_an_interpreter_needing_a_private_directory_is_skipped(tmp_path: Path) -> None:
    assert forbidden(str(tmp_path))  # pytest's temp dirs live under /tmp
    bash = os.path.realpath("/usr/bin/bash")
    copy = tmp_path / "bash"
    shutil.copy2(bash, copy)
    assert probe(LANGUAGES["bash"], bash) is not None
    assert probe(LANGUAGES["bash"], str(copy)) is None  # the same binary, bound from /tmp


def test_wrapper_scripts_are_not_interpreters(tmp_path: Path) -> None:
    shim = tmp_path / "python3"
    shim.write_text('#!/usr/bin/env bash\nexec pyenv exec python3 "$@"\n')
    shim.chmod(0o700)
    assert probe(LANGUAGES["python"], str(shim)) is None


def test_missing_commands_are_skipped(tmp_path: Path) -> None:
    assert probe(LANGUAGES["python"], str(tmp_path / "nope")) is None


def test_runtimes_table_lists_versions_newest_first_and_keeps_the_preferred_default() -> None:
    found = [
        Interpreter("python", "3.11", "3.11.2", "/usr/bin/python3.11"),
        Interpreter("python", "3.12", "3.12.1", "/opt/py/bin/python3.12", ("/opt/py",)),
        Interpreter("bash", "5.2", "5.2.15", "/usr/bin/bash"),
    ]
    assert runtimes_of(found) == [
        Runtime(
            "python",
            ["3.12", "3.11"],
            default_version="3.11",
            script_file="main.py",
            full_versions=["3.12.1", "3.11.2"],
        ),
        Runtime(
            "bash", ["5.2"], default_version="5.2", script_file="main.sh", full_versions=["5.2.15"]
        ),
    ]


def test_compiled_languages_say_so() -> None:
    found = [Interpreter("c", "12", "12.2.0", "/usr/bin/x86_64-linux-gnu-gcc-12")]
    assert runtimes_of(found) == [
        Runtime(
            "c",
            ["12"],
            default_version="12",
            script_file="main.c",
            compiled=True,
            full_versions=["12.2.0"],
        )
    ]
    assert {s.language for s in LANGUAGES.values() if s.compiled} == {
        "c",
        "c++",
        "go",
        "rust",
        "java",
        "typescript",
    }


@pytest.mark.parametrize(
    ("language", "output", "expected"),
    [
        ("c", "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\n", ("12.2.0", "12")),
        ("c++", "x86_64-linux-gnu-g++-12 (Debian 12.2.0-14) 12.2.0\n", ("12.2.0", "12")),
        ("go", "go version go1.19.8 linux/amd64\n", ("1.19.8", "1.19")),
        ("rust", "rustc 1.63.0\n", ("1.63.0", "1.63")),
        ("java", "javac 17.0.15\n", ("17.0.15", "17")),
        ("typescript", "Version 4.8.4\n", ("4.8.4", "4.8")),
        (
            "ruby",
            "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a)",
            ("3.1.2", "3.1"),
        ),
        ("php", "PHP 8.2.36 (cli) (built: Jan  1 2026)", ("8.2.36", "8.2")),
        (
            "perl",
            "This is perl 5, version 36, subversion 0 (v5.36.0)",
            ("5.36.0", "5.36"),
        ),
        ("lua", "Lua 5.1.5  Copyright (C) 1994-2012 Lua.org, PUC-Rio", ("5.1.5", "5.1")),
    ],
)
def test_versions_of_the_new_languages(
    language: str, output: str, expected: tuple[str, str]
) -> None:
    assert parse_version(LANGUAGES[language], output) == expected
