"""The first command shows the main job: one execution through the public API, then its trace.

Run by `make up` once everything is healthy (or alone: `.venv/bin/python deploy/local/demo.py`).
Logs in as the local admin, submits `print(sum(range(10)))`, waits for the result, and prints
the output, the timings, and the trace with the Jaeger query URL for it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import httpx

API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
JAEGER = f"http://127.0.0.1:{os.environ.get('JAEGER_QUERY_PORT', '16686')}"
SCRIPT = "print(sum(range(10)))"
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


def _until(what: str, timeout_s: float, probe: Any) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            sys.exit(f"demo: {what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.1)


def _login(http: httpx.Client) -> str:
    credentials = {
        "username": os.environ.get("API_ADMIN_USERNAME", "admin"),
        "password": os.environ.get("API_ADMIN_PASSWORD", "admin-change-me"),
    }

    def attempt() -> str | None:
        response = http.post("/api/v1/auth/login", json=credentials)
        return response.json()["access_token"] if response.status_code == 200 else None

    token: str = _until("admin login", 30, attempt)
    return token


def _print_trace(trace: dict[str, Any]) -> None:
    processes = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    spans = {s["spanID"]: s for s in trace["spans"]}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in trace["spans"]:
        parent = next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)
        children.setdefault(parent if parent in spans else None, []).append(span)
    start = min(s["startTime"] for s in trace["spans"])

    def show(span: dict[str, Any], depth: int) -> None:
        offset = (span["startTime"] - start) / 1000
        print(
            f"    {offset:8.1f} ms {span['duration'] / 1000:8.1f} ms  {'  ' * depth}"
            f"{span['operationName']}  [{processes[span['processID']]}]"
        )
        for child in sorted(children.get(span["spanID"], []), key=lambda s: s["startTime"]):
            show(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s["startTime"]):
        show(root, 0)


def main() -> None:
    with httpx.Client(base_url=API, timeout=30) as http:
        headers = {"Authorization": f"Bearer {_login(http)}"}
        posted = time.perf_counter()
        response = http.post(
            "/api/v1/execute", json={"script": SCRIPT, "language": "python"}, headers=headers
        )
        if response.status_code != 202:
            sys.exit(f"demo: POST /execute answered {response.status_code}: {response.text}")
        execution_id = response.json()["execution_id"]

        def terminal() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(
                f"/api/v1/executions/{execution_id}", headers=headers
            ).json()
            return body if body["status"] in TERMINAL else None

        result: dict[str, Any] = _until("the execution", 60, terminal)
        elapsed_ms = (time.perf_counter() - posted) * 1000

    usage = result.get("resource_usage") or {}
    print(f"\nDemo execution {execution_id}: {SCRIPT}")
    print(
        f"  status {result['status']}, exit code {result['exit_code']}, stdout: "
        f"{(result.get('stdout') or '').strip()!r}"
    )
    print(
        f"  POST → terminal {elapsed_ms:.0f} ms; sandbox wall "
        f"{usage.get('wall_time_ms', 0):.1f} ms, cpu {usage.get('cpu_time_ms', 0):.1f} ms, "
        f"peak memory {usage.get('peak_memory_kb', 0)} KB"
    )
    trace_id = result["trace_id"]
    print(f"  trace {trace_id}: {JAEGER}/api/traces/{trace_id}")

    with httpx.Client(base_url=JAEGER, timeout=5) as jaeger:

        def trace() -> dict[str, Any] | None:
            response = jaeger.get(f"/api/traces/{trace_id}")
            data = response.json().get("data") if response.status_code == 200 else None
            if not data:
                return None
            names = {s["operationName"] for s in data[0]["spans"]}
            return data[0] if "sandbox.run" in names else None

        found = _until("the trace in Jaeger", 30, trace)
    print(f"  {len(found['spans'])} spans across {len(found['processes'])} services:")
    _print_trace(found)


if __name__ == "__main__":
    main()
