"""A headless Debian chromium driven through the DevTools protocol, for the page tests.

Only the system browser: a missing ``chromium`` fails the test with how to install it (the
repo's prereqs step does), it is never skipped and no browser build is downloaded."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import websockets

from tests.polling import eventually

BROWSERS = ("chromium", "chromium-browser")
MISSING = (
    "chromium is not installed: the browser tests need Debian's `chromium` package "
    "(deploy/local/prereqs.sh installs it; or `apt-get install chromium`)"
)


def chromium_binary() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(MISSING)


class Browser:
    """One headless chromium with one page, driven over its DevTools websocket."""

    def __init__(self, width: int = 1400, height: int = 1800) -> None:
        self._size = f"{width},{height}"
        self._ids = itertools.count(1)
        self._profile = Path(tempfile.mkdtemp(prefix="integr8scode-chromium-"))
        self._process: asyncio.subprocess.Process | None = None
        self._ws: Any = None

    async def __aenter__(self) -> Browser:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)  # no browser left behind a failed start
            raise
        return self

    async def _start(self) -> None:
        binary = chromium_binary()
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "--headless=new",
            "--no-sandbox",  # runs as root in CI; the page under test is our own
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile}",
            f"--window-size={self._size}",
            "about:blank",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self._profile / "DevToolsActivePort"

        async def port() -> int | None:
            if self._process is not None and self._process.returncode is not None:
                raise AssertionError(f"chromium exited with {self._process.returncode}")
            text = port_file.read_text() if port_file.exists() else ""
            return int(text.split()[0]) if text.strip() else None

        devtools = await eventually(port, timeout_s=30, what="chromium's DevTools port")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{devtools}", timeout=5) as http:

            async def page_target() -> str | None:
                targets = (await http.get("/json/list")).json()
                pages = [t for t in targets if t.get("type") == "page"]
                return str(pages[0]["webSocketDebuggerUrl"]) if pages else None

            url = await eventually(page_target, timeout_s=15, what="a chromium page target")
        self._ws = await websockets.connect(url, max_size=None)
        await self.call("Page.enable")
        await self.call("Runtime.enable")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._process is not None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and wait for its answer (events in between are skipped)."""
        call_id = next(self._ids)
        await self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while True:
            raw = await asyncio.wait_for(self._ws.recv(), max(0.1, deadline - time.monotonic()))
            message = json.loads(raw)
            if message.get("id") != call_id:
                continue
            if "error" in message:
                raise AssertionError(f"{method} failed: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        answer = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"page script failed: {answer['exceptionDetails']}")
        return answer.get("result", {}).get("value")

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        image = base64.b64decode(shot["data"])

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image)

        await asyncio.to_thread(write)
        return path
