"""The first command shows the main job: one execution through the public API, then its trace.

Run by `make up` once everything is healthy (or alone: `.venv/bin/python deploy/local/demo.py`).
Uses the `integr8scode` CLI as a user would: logs in as the local admin (a config dir of its
own), runs `print(sum(range(10)))` and shows what the CLI shows (status as it moves, output,
resource usage, the timeline where the api has it); then prints the trace from Jaeger as a tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
JAEGER = f"http://127.0.0.1:{os.environ.get('JAEGER_QUERY_PORT', '16686')}"
SCRIPT = "print(sum(range(10)))"
CLI = Path(sys.executable).with_name("integr8scode")


def _until(what: str, timeout_s: float, probe: Any) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            sys.exit(f"demo: {what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.1)


def _login(env: dict[str, str]) -> None:
    username = os.environ.get("API_ADMIN_USERNAME", "admin")
    password = os.environ.get("API_ADMIN_PASSWORD", "admin-change-me")

    def attempt() -> bool:
        done = subprocess.run(
            [str(CLI), "login", "-u", username, "--password-stdin"],
            input=password + "\n",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0

    _until("admin login", 30, attempt)


def _run(env: dict[str, str], script: Path) -> tuple[str, str]:
    """``integr8scode run``, its lines shown as they come; the execution and trace ids."""
    print(f"\n$ integr8scode run {script.name}      # {SCRIPT}")
    execution_id = trace_id = ""
    with subprocess.Popen(
        [str(CLI), "run", str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe: the CLI's own order
        text=True,
    ) as cli:
        for line in cli.stdout or ():
            print(f"  {line}", end="", flush=True)
            words = line.split()
            if len(words) >= 2 and words[0] == "execution" and not execution_id:
                execution_id = words[1]
            if len(words) == 2 and words[0] == "trace":
                trace_id = words[1]
    if cli.returncode != 0 or not trace_id:
        sys.exit(f"demo: integr8scode run ended with exit code {cli.returncode}")
    return execution_id, trace_id


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
    if not CLI.exists():
        sys.exit(f"demo: no {CLI}: `make install` (uv sync --all-packages) installs the CLI")
    with tempfile.TemporaryDirectory(prefix="integr8scode-demo-") as home:
        env = {**os.environ, "XDG_CONFIG_HOME": home, "INTEGR8SCODE_URL": API}
        env.pop("INTEGR8SCODE_TOKEN", None)
        _login(env)
        script = Path(home) / "sum.py"
        script.write_text(SCRIPT + "\n")
        posted = time.perf_counter()
        execution_id, trace_id = _run(env, script)
        elapsed_ms = (time.perf_counter() - posted) * 1000
    print(
        f"\nDemo execution {execution_id}: the CLI took {elapsed_ms:.0f} ms "
        "(most of it waiting for the whole trace, for the timeline)"
    )
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
