"""A request's inputs as the sandbox takes them, and the verdict on its output.

``execution.requested`` carries stdin and extra files as text, or as base64 when the client
sent bytes (``encoding``); here they become bytes, and a malformed one is a reason to refuse
the request (``InvalidInputError``), not a crash of the handler.
"""

from __future__ import annotations

import binascii
from typing import Literal

Verdict = Literal["accepted", "wrong_answer"]


class InvalidInputError(ValueError):
    """An input that can't be decoded as its encoding says."""


def decode(content: str, encoding: str, what: str) -> bytes:
    """``content`` as bytes: UTF-8 text, or base64 (strict: no stray characters)."""
    if encoding == "utf-8":
        return content.encode()
    if encoding == "base64":
        try:
            return binascii.a2b_base64(content, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(f"{what} is not valid base64: {exc}") from exc
    raise InvalidInputError(f"{what} has an unknown encoding {encoding!r}")


def normalized(text: str) -> str:
    """Trailing whitespace of each line and at the end removed (``\\r\\n`` reads as ``\\n``)."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip()


def verdict(
    expected: str, *, stdout: str, completed: bool, exit_code: int | None, truncated: bool
) -> Verdict:
    """``accepted`` when the program ran to its end, exited 0, its whole output was kept and it
    matches ``expected`` once both are ``normalized``; else ``wrong_answer``."""
    matches = normalized(stdout) == normalized(expected)
    ok = completed and exit_code == 0 and not truncated and matches
    return "accepted" if ok else "wrong_answer"


NUL = "\0"
REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    """``text`` without NUL characters, which the store can't hold (FerretDB on PostgreSQL
    refuses them in strings); each becomes U+FFFD, as undecodable bytes already are."""
    return text.replace(NUL, REPLACEMENT) if NUL in text else text
