"""``integr8scode``: the command line of the public API. Errors are one line on stderr; the
exit codes are in ``exit_codes`` (and the package README)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

import httpx

from integr8scode_client.cli import commands, exit_codes
from integr8scode_client.cli.context import TOKEN_ENV, URL_ENV, Context, UsageError
from integr8scode_client.errors import (
    ApiError,
    Invalid,
    NotFound,
    NotSupported,
    RateLimited,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)

Command = Callable[[argparse.Namespace, Context], Coroutine[Any, Any, int]]
PROG = "integr8scode"


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line (exit code 2 as argparse has it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run code on an Integr8sCode platform and see where the time went.",
        epilog=f"The API is --url, else ${URL_ENV}, else http://127.0.0.1:8000. "
        f"${TOKEN_ENV} overrides the stored token.",
    )
    parser.add_argument("--url", help=f"the API's base URL (default: ${URL_ENV})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    for name, text in (
        ("login", "log in and keep the token"),
        ("register", "make an account, then log in"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--username", "-u")
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        p.set_defaults(handler=commands.login)
    sub.add_parser("logout", help="forget the stored token").set_defaults(handler=commands.logout)

    p = sub.add_parser("runtimes", help="the languages and versions the platform runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.runtimes)

    p = sub.add_parser("run", help="run a file and show its output, status and timeline")
    p.add_argument("file", help="the script; its extension names the language")
    p.add_argument("--lang", "-l", help="the language (default: from the extension)")
    p.add_argument("--version", dest="version", help="the language version (default: its default)")
    p.add_argument("--stdin", metavar="FILE", help="a file fed to the program's stdin ('-': ours)")
    p.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit of the run")
    p.add_argument("--memory", type=int, metavar="MB", help="memory limit of the run")
    p.add_argument("--arg", action="append", metavar="A", help="a command-line argument (repeat)")
    p.add_argument(
        "--file",
        dest="files",
        action="append",
        metavar="[NAME=]PATH",
        help="an extra file in the run's working directory (repeat)",
    )
    p.add_argument(
        "--expect", metavar="FILE", help="the expected stdout: the result tells its verdict"
    )
    p.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait for the end (default) or print the execution id and return",
    )
    p.add_argument(
        "--wait-timeout",
        type=float,
        default=300,
        metavar="S",
        help="give up waiting after S seconds (exit code 5)",
    )
    p.add_argument("--no-timeline", action="store_true", help="don't show the timeline")
    p.add_argument(
        "--timeline-wait",
        type=float,
        default=8,
        metavar="S",
        help="wait up to S seconds for the trace to be complete",
    )
    p.set_defaults(handler=commands.run)

    for name, text, handler in (
        ("get", "an execution's status, output and resource usage", commands.get),
        ("timeline", "where an execution's time went, as bars", commands.timeline),
        ("cancel", "cancel a queued or running execution", commands.cancel),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("id", help="the execution id")
        if name != "cancel":
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
    return parser


def describe(error: ApiError, url: str) -> tuple[str, int]:  # noqa: PLR0911 (one case each)
    """One line and the exit code for an API error."""
    if isinstance(error, Unauthorized):
        return f"{error.detail}: run `{PROG} login`", exit_codes.REFUSED
    if isinstance(error, RateLimited):
        wait = (
            f"retry after {error.retry_after:g} s"
            if error.retry_after is not None
            else "retry later"
        )
        return f"rate limited by the API: {wait} ({error.detail})", exit_codes.REFUSED
    if isinstance(error, Invalid):
        fields = [f"{field}: {message}" for field, message in error.errors if field]
        detail = "; ".join(fields) if fields else error.detail
        return f"invalid request: {detail}", exit_codes.USAGE
    if isinstance(error, NotSupported):
        return f"{error.detail} (an older API at {url}?)", exit_codes.REFUSED
    if isinstance(error, NotFound):
        return f"not found: {error.detail}", exit_codes.REFUSED
    if isinstance(error, Unavailable):
        if error.status == 0:
            return error.detail, exit_codes.UNAVAILABLE
        again = f"; retry after {error.retry_after:g} s" if error.retry_after else ""
        return f"the API failed ({error.status}): {error.detail}{again}", exit_codes.UNAVAILABLE
    return f"the API refused ({error.status}): {error.detail}", exit_codes.REFUSED


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run one command; answers the exit code (the console script exits with it)."""
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        err.write(f"{PROG}: error: {exc}\n")
        return exit_codes.USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else exit_codes.OK
    ctx = Context.build(args.url, stdin=stdin, stdout=stdout, stderr=stderr, transport=transport)
    handler: Command = args.handler
    try:
        return asyncio.run(handler(args, ctx))
    except UsageError as exc:
        line, code = str(exc), exit_codes.USAGE
    except ApiError as exc:
        line, code = describe(exc, ctx.url)
    except WaitTimeout as exc:
        line = f"{exc}; see `{PROG} get {exc.execution_id}`"
        code = exit_codes.WAIT_TIMEOUT
    except KeyboardInterrupt:
        line, code = "interrupted", exit_codes.CANCELLED
    err.write(f"{PROG}: error: {line}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
