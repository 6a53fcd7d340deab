"""The CLI's commands: each takes the parsed arguments and the context and answers an exit
code; API errors go up to ``main``, which prints them as one line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import time
from pathlib import Path

from integr8scode_client.async_client import AsyncClient
from integr8scode_client.cli import exit_codes
from integr8scode_client.cli.context import Context, UsageError
from integr8scode_client.cli.credentials import Credential
from integr8scode_client.cli.languages import EXTENSIONS, language_of
from integr8scode_client.cli.progress import StatusDisplay
from integr8scode_client.cli.render import execution_summary, runtime_table, timeline_lines
from integr8scode_client.errors import NotSupported, Unavailable
from integr8scode_client.execute_request import ExecuteRequest, Limits, WorkFile
from integr8scode_client.models import Execution, Timeline


def _credentials(args: argparse.Namespace, ctx: Context) -> tuple[str, str]:
    username = args.username
    if not username:
        if args.password_stdin:
            raise UsageError("--password-stdin needs --username")
        ctx.stderr.write("username: ")
        ctx.stderr.flush()
        username = ctx.stdin.readline().strip()
    if not username:
        raise UsageError("no username given")
    if args.password_stdin:
        password = ctx.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ", stream=ctx.stderr)
    if not password:
        raise UsageError("no password given")
    return username, password


async def login(args: argparse.Namespace, ctx: Context) -> int:
    username, password = _credentials(args, ctx)
    async with ctx.client(authenticated=False) as api:
        if args.command == "register":
            registration = await api.register(username, password)
            username = registration.username
        token = await api.login(username, password)
    ctx.store.put(Credential(ctx.url, username, token.access_token))
    ctx.say(f"logged in to {ctx.url} as {username} (token in {ctx.store.path})")
    return exit_codes.OK


async def logout(args: argparse.Namespace, ctx: Context) -> int:
    removed = ctx.store.remove(ctx.url)
    ctx.say(f"logged out of {ctx.url}" if removed else f"no token for {ctx.url}")
    return exit_codes.OK


async def runtimes(args: argparse.Namespace, ctx: Context) -> int:
    async with ctx.client() as api:
        found = await api.runtimes()
    if args.json:
        ctx.stdout.write("[" + ",".join(r.model_dump_json() for r in found) + "]\n")
    else:
        ctx.stdout.write("\n".join(runtime_table(found, ctx.out_style)) + "\n")
    return exit_codes.OK


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None


def _read_data(path: Path, what: str) -> str | bytes:
    """A file's content: text when it is UTF-8, else the bytes (the client sends base64)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _stdin_of(args: argparse.Namespace, ctx: Context) -> str | bytes:
    if args.stdin is None:
        return ""
    if args.stdin == "-":
        return ctx.stdin.read()
    return _read_data(Path(args.stdin), "stdin file")


def _work_files(specs: list[str] | None) -> list[WorkFile]:
    """``--file PATH`` (named as its base name) or ``--file NAME=PATH``."""
    files = []
    for spec in specs or []:
        name, sep, where = spec.partition("=")
        path = Path(where if sep else spec)
        files.append(WorkFile(name if sep else path.name, _read_data(path, "file")))
    return files


def build_request(args: argparse.Namespace, ctx: Context) -> ExecuteRequest:
    path = Path(args.file)
    script = _read_text(path, "script")
    if not script.strip():
        raise UsageError(f"script {path}: empty")
    language = args.lang or language_of(path)
    if language is None:
        known = ", ".join(sorted(EXTENSIONS))
        raise UsageError(f"can't tell the language of {path.name} (known: {known}); pass --lang")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    limits = (
        Limits(timeout_s=args.timeout, memory_mb=args.memory)
        if args.timeout or args.memory
        else None
    )
    return ExecuteRequest(
        script=script,
        language=language,
        language_version=args.version,
        stdin=_stdin_of(args, ctx),
        args=list(args.arg or []),
        files=_work_files(args.files),
        expected_stdout=None if args.expect is None else _read_text(Path(args.expect), "expected"),
        limits=limits,
    )


async def run(args: argparse.Namespace, ctx: Context) -> int:
    request = build_request(args, ctx)
    async with ctx.client() as api:
        submitted = await api.execute(request)
        if not args.wait:
            ctx.stdout.write(submitted.execution_id + "\n")
            return exit_codes.OK
        style = ctx.err_style
        ctx.say(f"{style('execution', 'bold')} {submitted.execution_id} ({request.language})")
        display = StatusDisplay(ctx.stderr, live=style.ansi, style=style)
        execution = await display.follow(
            api.wait(
                submitted.execution_id,
                timeout_s=args.wait_timeout,
                on_status=display.update,
                base64=True,  # the exact bytes the program wrote (an older API sends text)
            )
        )
        _write_output(execution, ctx)
        ctx.say("\n".join(execution_summary(execution, style, ctx.url)[1:]))
        if not args.no_timeline:
            try:
                timeline = await _settled_timeline(
                    api, execution.execution_id, args.timeline_wait, ctx
                )
            except Unavailable as exc:  # its trace backend: the run itself went fine
                ctx.say(style(f"timeline unavailable: {exc.detail}", "yellow"))
            else:
                if timeline is not None:
                    ctx.say("\n".join(timeline_lines(timeline, style)))
    return exit_codes.of_execution(execution)


def _write_output(execution: Execution, ctx: Context) -> None:
    """The program's stdout to ours and its stderr to ours, byte for byte where possible."""
    for data, stream in (
        (execution.stdout_bytes(), ctx.stdout),
        (execution.stderr_bytes(), ctx.stderr),
    ):
        if not data:
            continue
        stream.flush()
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode(errors="replace"))
        if not data.endswith(b"\n") and _is_terminal(stream):
            stream.write("\n")  # keep the prompt (and our summary) on a line of its own


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


async def _settled_timeline(
    api: AsyncClient, execution_id: str, wait_s: float, ctx: Context
) -> Timeline | None:
    """The timeline once its trace is complete, or as it is after ``wait_s``: spans reach the
    trace store seconds after the result (the collector holds a trace until it decides to keep
    it). None when the API offers no timeline route."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            timeline = await api.timeline(execution_id)
        except NotSupported:
            return None  # an API without the timeline
        if timeline.complete is not False or time.monotonic() >= deadline:
            return timeline
        if not told:
            ctx.say(
                f"timeline: waiting up to {wait_s:g} s for the whole trace (--no-timeline skips)"
            )
            told = True
        await asyncio.sleep(0.5)


async def get(args: argparse.Namespace, ctx: Context) -> int:
    async with ctx.client() as api:
        execution = await api.get(args.id, base64=not args.json)
    if args.json:
        ctx.stdout.write(execution.model_dump_json(indent=2) + "\n")
        return exit_codes.OK
    _write_output(execution, ctx)
    ctx.say("\n".join(execution_summary(execution, ctx.err_style, ctx.url)))
    return exit_codes.OK


async def timeline(args: argparse.Namespace, ctx: Context) -> int:
    async with ctx.client() as api:
        found = await api.timeline(args.id)
    if args.json:
        ctx.stdout.write(found.model_dump_json(indent=2) + "\n")
    else:
        ctx.stdout.write("\n".join(timeline_lines(found, ctx.out_style)) + "\n")
    return exit_codes.OK


async def cancel(args: argparse.Namespace, ctx: Context) -> int:
    async with ctx.client() as api:
        accepted = await api.cancel(args.id)
    ctx.say(f"execution {accepted.execution_id}: {accepted.status}")
    return exit_codes.OK


__all__ = ["build_request", "cancel", "get", "login", "logout", "run", "runtimes", "timeline"]
