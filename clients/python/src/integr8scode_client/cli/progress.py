"""The live status of a run while the CLI waits: a spinner line on a terminal, one plain line
per status when the output goes to a pipe or file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TextIO, TypeVar

from integr8scode_client.cli.render import Style

T = TypeVar("T")
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StatusDisplay:
    def __init__(self, stream: TextIO, *, live: bool, style: Style) -> None:
        self._stream = stream
        self._live = live
        self._style = style
        self._statuses: list[str] = []
        self._started = time.monotonic()

    def update(self, status: str) -> None:
        """A new status (the client reports each one once, in order)."""
        self._statuses.append(status)
        if not self._live:
            elapsed = time.monotonic() - self._started
            self._stream.write(f"status: {status} ({elapsed:.1f} s)\n")
            self._stream.flush()

    def _trail(self) -> str:
        return " → ".join(self._style.status(s) for s in self._statuses) or "submitting"

    async def follow(self, work: Awaitable[T]) -> T:
        """Await ``work`` while the spinner turns (on a terminal); the line it leaves is the
        whole trail of statuses and the time taken."""
        if not self._live:
            return await work
        spinner = asyncio.create_task(self._spin())
        try:
            return await work
        finally:
            spinner.cancel()
            elapsed = time.monotonic() - self._started
            self._stream.write(f"\r\033[K{self._trail()} ({elapsed:.1f} s)\n")
            self._stream.flush()

    async def _spin(self) -> None:
        frame = 0
        while True:
            elapsed = time.monotonic() - self._started
            spinner = self._style(_FRAMES[frame % len(_FRAMES)], "cyan")
            self._stream.write(f"\r\033[K{spinner} {self._trail()} {elapsed:.1f} s")
            self._stream.flush()
            frame += 1
            await asyncio.sleep(0.1)
