"""The language of a script, from its file name's extension."""

from __future__ import annotations

from pathlib import Path

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".sh": "bash",
    ".bash": "bash",
    ".rb": "ruby",
    ".go": "go",
    ".c": "c",
    ".cpp": "c++",
    ".cc": "c++",
    ".cxx": "c++",
    ".java": "java",
    ".rs": "rust",
    ".php": "php",
    ".pl": "perl",
    ".lua": "lua",
}


def language_of(path: Path) -> str | None:
    """The language the extension names, or None when it names none."""
    return EXTENSIONS.get(path.suffix.lower())
