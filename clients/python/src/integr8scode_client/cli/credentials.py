"""Where the CLI keeps its tokens: ``$XDG_CONFIG_HOME/integr8scode/credentials.json`` (or
``~/.config/integr8scode/...``), one token per API URL, readable by its owner only (0600, in a
0700 directory)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "credentials.json"


def config_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "integr8scode"


@dataclass(frozen=True)
class Credential:
    url: str
    username: str
    token: str


class CredentialStore:
    """Tokens by API URL in one JSON file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable or damaged: as if logged out; login writes it anew
        return data if isinstance(data, dict) else {}

    def get(self, url: str) -> Credential | None:
        entry = self._read().get(url)
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            return None
        return Credential(url, str(entry.get("username", "")), entry["token"])

    def put(self, credential: Credential) -> None:
        data = self._read()
        data[credential.url] = {"username": credential.username, "token": credential.token}
        self._write(data)

    def remove(self, url: str) -> bool:
        data = self._read()
        if data.pop(url, None) is None:
            return False
        self._write(data)
        return True

    def _write(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written beside and renamed over: the token is never in a file others may read, not
        # even for a moment, and a crash leaves the old file whole.
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the file may have existed with a wider mode
            os.write(fd, json.dumps(data, indent=2).encode())
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
