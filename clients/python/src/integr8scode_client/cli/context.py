"""What every command works with: the API URL, the stored token, the streams, and a client."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from integr8scode_client.async_client import DEFAULT_URL, AsyncClient
from integr8scode_client.cli.credentials import CredentialStore, config_dir
from integr8scode_client.cli.render import Style
from integr8scode_client.errors import Unauthorized

URL_ENV = "INTEGR8SCODE_URL"
TOKEN_ENV = "INTEGR8SCODE_TOKEN"  # noqa: S105 (a variable name, not a secret)


class UsageError(Exception):
    """Bad arguments or input files: one line, exit code 2."""


@dataclass
class Context:
    url: str
    store: CredentialStore
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    transport: httpx.AsyncBaseTransport | None = None
    env_token: str | None = None

    @classmethod
    def build(
        cls,
        url: str | None,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Context:
        return cls(
            url=(url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/"),
            store=CredentialStore(config_dir()),
            stdin=stdin or sys.stdin,
            stdout=stdout or sys.stdout,
            stderr=stderr or sys.stderr,
            transport=transport,
            env_token=os.environ.get(TOKEN_ENV) or None,
        )

    @property
    def err_style(self) -> Style:
        return Style.for_stream(self.stderr)

    @property
    def out_style(self) -> Style:
        return Style.for_stream(self.stdout)

    def client(self, *, authenticated: bool = True) -> AsyncClient:
        token = None
        if authenticated:
            token = self.env_token
            if token is None:
                stored = self.store.get(self.url)
                if stored is None:
                    raise Unauthorized(401, f"not logged in to {self.url}")
                token = stored.token
        return AsyncClient(self.url, token, transport=self.transport)

    def say(self, line: str = "") -> None:
        """A line about what happens (stderr: stdout carries only the program's output)."""
        self.stderr.write(line + "\n")
        self.stderr.flush()
