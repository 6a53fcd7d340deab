"""Extra files and arguments of a run: which are refused, and the directories files need.

The API refuses bad names and sizes at its edge; the sandbox refuses them again (a request
that reached Kafka by another way, a replayed event, a bug in the edge). A file is written by
bubblewrap (``--file``) under ``/work`` before the program starts, so a name must stay inside
it: a plain name or a relative path, no ``..``, no ``.`` or empty component, no absolute path,
no NUL or other control character, not the script's own file (nor a directory of that name),
no two files where one would be the other's directory.
"""

from __future__ import annotations

from collections.abc import Sequence

from integr8scode_coordinator.sandbox.model import WorkFile

MAX_FILES = 64  # each is a descriptor of the launcher: a hard ceiling whatever the settings say
MAX_NAME_BYTES = 255
MAX_ARGS = 256


def name_problem(name: str) -> str | None:
    """Why ``name`` can't be a file of the working directory, or None."""
    parts = name.split("/")
    checks = (
        (not name, "a file name is empty"),
        (
            len(name.encode()) > MAX_NAME_BYTES,
            f"file name {name[:40]!r}… is longer than {MAX_NAME_BYTES} bytes",
        ),
        (
            any(ord(c) < 0x20 or ord(c) == 0x7F for c in name),
            f"file name {name!r} contains a NUL or control character",
        ),
        (
            name.startswith("/"),
            f"file name {name!r} is an absolute path; give a path relative to the directory",
        ),
        (".." in parts, f"file name {name!r} leaves the working directory (..)"),
        (
            any(p in ("", ".") for p in parts),
            f"file name {name!r} has an empty or '.' path component",
        ),
    )
    return next((problem for refused, problem in checks if refused), None)


def files_problem(files: Sequence[WorkFile], script_file: str) -> str | None:
    """Why this set of files can't be written next to ``script_file``, or None."""
    if len(files) > MAX_FILES:
        return f"{len(files)} files; at most {MAX_FILES}"
    seen: set[str] = set()
    for file in files:
        problem = name_problem(file.name)
        if problem is not None:
            return problem
        if file.name.split("/")[0] == script_file:
            return f"file name {file.name!r} clashes with the script's own file {script_file!r}"
        if file.name in seen:
            return f"file name {file.name!r} is given twice"
        seen.add(file.name)
    for name in seen:
        for directory in parent_dirs([name]):
            if directory in seen:
                return f"file name {directory!r} is also the directory of {name!r}"
    return None


def args_problem(args: Sequence[str]) -> str | None:
    """Why these command-line arguments can't be passed, or None (a NUL can't be in argv)."""
    if len(args) > MAX_ARGS:
        return f"{len(args)} arguments; at most {MAX_ARGS}"
    for index, arg in enumerate(args):
        if "\0" in arg:
            return f"argument {index} contains a NUL character"
    return None


def parent_dirs(names: Sequence[str]) -> list[str]:
    """The directories (relative, parents first, each once) the files ``names`` need."""
    dirs: list[str] = []
    for name in names:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in dirs:
                dirs.append(directory)
    return dirs
