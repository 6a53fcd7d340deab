"""Where the time went, end to end: ``GET /api/v1/executions/{id}/timeline`` of a real execution
(built by the api from the trace in Jaeger), its ownership rules, and the execution page in a
real headless chromium (login, waterfall, critical path, dead-letter backoff, screenshot)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.browser import Browser
from tests.e2e.client import API, ApiUser, new_user
from tests.polling import eventually

PHASES = ["accepted", "publish", "queue_wait", "sandbox", "result_stored", "status_delivered"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"


async def complete_timeline(
    user: ApiUser, execution_id: str, timeout_s: float = 60
) -> dict[str, Any]:
    """The timeline once the whole trace is in Jaeger (``complete``), polled with a deadline."""

    async def complete() -> dict[str, Any] | None:
        response = await user.http.get(
            f"/api/v1/executions/{execution_id}/timeline", headers=user.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["complete"] else None

    return await eventually(
        complete, timeout_s=timeout_s, interval_s=0.5, what=f"complete timeline of {execution_id}"
    )


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): deliveries to it fail."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_completed_executions_timeline_has_every_phase_in_order(user: ApiUser) -> None:
    result = await user.run("print(sum(range(10)))")
    assert result["status"] == "completed"
    assert result["links"] == {
        "page": f"/executions/{result['execution_id']}",
        "timeline": f"/api/v1/executions/{result['execution_id']}/timeline",
    }
    timeline = await complete_timeline(user, result["execution_id"])

    assert timeline["trace_id"] == result["trace_id"]
    assert timeline["missing"] == []
    assert [p["name"] for p in timeline["phases"]] == PHASES
    starts = [p["start_ms"] for p in timeline["phases"]]
    assert starts == sorted(starts)
    assert all(p["duration_ms"] >= 0 for p in timeline["phases"])
    assert timeline["phases"][0]["start_ms"] == 0
    assert 0 < timeline["result_ms"] <= timeline["total_ms"]
    assert result["trace_id"] in timeline["links"]["jaeger"]
    spans = {s["span_id"]: s for s in timeline["spans"]}
    sandbox = next(p for p in timeline["phases"] if p["name"] == "sandbox")
    [sandbox_span] = sandbox["span_ids"]
    assert spans[sandbox_span]["name"] == "sandbox.run"
    assert spans[sandbox_span]["service"] == "execution-coordinator"
    assert spans[sandbox_span]["critical"] is True
    services = {s["service"] for s in timeline["spans"]}
    assert {"integr8scode-backend", "execution-coordinator", "notifier"} <= services
    path = timeline["critical_path"]
    assert path[0]["name"] == "POST /api/v1/execute"
    assert all(seg["span_id"] in spans for seg in path)


async def test_another_users_timeline_is_404_and_without_a_token_401(
    user: ApiUser, http: httpx.AsyncClient
) -> None:
    result = await user.run("print('mine')")
    other = await new_user(http)
    path = f"/api/v1/executions/{result['execution_id']}/timeline"
    response = await http.get(path, headers=other.headers)
    assert response.status_code == 404, response.text
    assert "detail" in response.json()
    anonymous = await http.get(path)
    assert anonymous.status_code == 401
    page = await http.get(result["links"]["page"])  # the page itself is public; its data isn't
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_the_page_logs_in_and_draws_the_waterfall(user: ApiUser) -> None:
    # A webhook nobody answers: the notification fails, is dead-lettered and retried with
    # backoff, so the waterfall has dlq-processor bars and backoff bars to show.
    settings = await user.http.put(
        "/api/v1/notifications/settings",
        json={"webhook": {"url": f"http://127.0.0.1:{closed_port()}/hook"}},
        headers=user.headers,
    )
    assert settings.status_code == 200, settings.text
    result = await user.run("print('drawn')")
    execution_id = result["execution_id"]
    timeline = await complete_timeline(user, execution_id, timeout_s=120)
    [webhook] = timeline["notifications"]
    assert webhook["channel"] == "webhook"
    assert webhook["retries"], "the failed webhook was retried through the DLQ"
    assert all(r["backoff_ms"] > 0 for r in webhook["retries"])

    async with Browser() as browser:
        await browser.goto(API + result["links"]["page"])

        async def state(wanted: str) -> bool:
            return bool(await browser.evaluate(f"document.body.dataset.state === '{wanted}'"))

        await eventually(lambda: state("login"), timeout_s=20, what="the login form")
        await browser.evaluate(
            "document.getElementById('username').value = " + _js(user.username) + ";"
            "document.getElementById('password').value = " + _js(user.password) + ";"
            "document.getElementById('login-form').requestSubmit(); true"
        )
        await eventually(lambda: state("ready"), timeout_s=60, what="the rendered timeline")
        dom = await browser.evaluate(
            """(() => {
              const bars = [...document.querySelectorAll('#waterfall .bar')];
              return {
                token: sessionStorage.getItem('integr8scode.token') !== null,
                status: document.getElementById('status').textContent,
                stdout: document.getElementById('stdout').textContent,
                jaeger: document.getElementById('jaeger-link').href,
                phases: [...document.querySelectorAll('#phases tbody tr')]
                  .map(r => r.dataset.phase),
                groups: [...document.querySelectorAll('#waterfall .group')]
                  .map(g => g.dataset.service),
                bars: bars.map(b => ({
                  span: b.dataset.spanId || null,
                  name: b.dataset.name,
                  critical: b.classList.contains('critical'),
                  backoff: b.classList.contains('backoff'),
                  service: b.closest('.group').dataset.service,
                })),
              };
            })()"""
        )
        shot = await browser.screenshot(SCREENSHOTS / f"execution-page-{execution_id}.png")
        print(f"screenshot of the execution page: {shot}")

    assert dom["token"] is True
    assert (dom["status"], dom["stdout"]) == ("completed", "drawn\n")
    assert result["trace_id"] in dom["jaeger"]
    assert dom["phases"] == PHASES
    span_bars = [b for b in dom["bars"] if not b["backoff"]]
    # The page fetched the timeline again: the trace may have grown; never fewer bars.
    assert len(span_bars) >= len(timeline["spans"])
    assert {b["span"] for b in span_bars} >= {s["span_id"] for s in timeline["spans"]}
    assert {"integr8scode-backend", "execution-coordinator", "notifier", "dlq-processor"} <= set(
        dom["groups"]
    )
    sandbox = [b for b in span_bars if b["name"] == "sandbox.run"]
    assert len(sandbox) == 1
    assert sandbox[0]["critical"] is True
    assert sandbox[0]["service"] == "execution-coordinator"
    assert any(b["name"] == "dlq.retry" for b in span_bars)
    backoffs = [b for b in dom["bars"] if b["backoff"]]
    assert len(backoffs) == len(webhook["retries"])
    assert all(b["service"] == "dlq-processor" for b in backoffs)
    assert shot.stat().st_size > 10_000


def _js(value: str) -> str:
    """A JavaScript string literal of ``value``."""
    return json.dumps(value)
