"""The Slack message for an execution summary: a fallback ``text`` and Block Kit ``blocks``.

Everything that comes from the user's program (output, error) is escaped for Slack's mrkdwn
(``&``, ``<``, ``>``), so a program can't print ``<!channel>`` or a disguised link into
someone's channel, and backtick fences in it can't end the code block early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from integr8scode_notifier.domain.summary import ExecutionSummary

STATUS_EMOJI = {
    "completed": ":white_check_mark:",
    "failed": ":x:",
    "timed_out": ":hourglass:",
    "cancelled": ":no_entry_sign:",
}
NONZERO_EXIT_EMOJI = ":warning:"
# Slack's limits: section text 3000 characters, header 150; previews stay well below.
_PREVIEW_LIMIT = 800
_ERROR_LIMIT = 500


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Text safe to put in mrkdwn: no mentions, links or markup sneak in."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str, limit: int) -> str:
    body = escape(text[:limit]).replace("```", "`\u200b``")
    if len(text) > limit:
        body += "\n…"
    return f"```{body}```"


def status_emoji(summary: ExecutionSummary) -> str:
    if summary.status == "completed" and summary.exit_code not in (None, 0):
        return NONZERO_EXIT_EMOJI
    return STATUS_EMOJI.get(summary.status, ":grey_question:")


def format_duration(duration_ms: float | None) -> str:
    if duration_ms is None:
        return "n/a"
    if duration_ms < 1000:
        return f"{duration_ms:.0f} ms"
    return f"{duration_ms / 1000:.2f} s"


def slack_message(summary: ExecutionSummary) -> SlackMessage:
    emoji = status_emoji(summary)
    runtime = f"{summary.language} {summary.language_version}"
    duration = format_duration(summary.duration_ms)
    exit_code = "n/a" if summary.exit_code is None else str(summary.exit_code)
    link = f"<{escape(summary.url)}|{escape(summary.execution_id)}>"
    text = (
        f"{emoji} Execution {escape(summary.execution_id)} {summary.status}: "
        f"{escape(runtime)}, {duration}, exit code {exit_code}. {escape(summary.url)}"
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"{emoji} Execution {summary.status}",
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Status*\n{emoji} {summary.status}"},
                {"type": "mrkdwn", "text": f"*Language*\n{escape(runtime)}"},
                {"type": "mrkdwn", "text": f"*Duration*\n{duration}"},
                {"type": "mrkdwn", "text": f"*Exit code*\n{exit_code}"},
            ],
        },
    ]
    if summary.error:
        error = escape(summary.error[:_ERROR_LIMIT])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Error*\n{error}"}})
    for title, preview in (("Output", summary.stdout_preview), ("Errors", summary.stderr_preview)):
        if preview:
            section = f"*{title}*\n{_code(preview, _PREVIEW_LIMIT)}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
    finished = summary.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Execution {link} · finished {finished}"}],
        }
    )
    return SlackMessage(text=text, blocks=blocks)
