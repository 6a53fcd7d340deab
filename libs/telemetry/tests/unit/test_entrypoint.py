"""``run_service``: one exit-status rule for every service's entry point. Invalid configuration
(a setting that fails validation, or one the composition root refuses) is one stderr line and
status 2 (1 for ``healthcheck``); unknown arguments are status 2; a service command's status is
its own; served, SIGTERM drains, runs the lifespan's closes and exits 0 (in a real process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_telemetry import EXIT_CONFIG, run_service
from integr8scode_telemetry import entrypoint as entrypoint_module


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENTRYPOINT_TEST_")

    host: str = "127.0.0.1"
    port: int = Field(default=1, ge=1, le=65535)
    log_level: str = "INFO"


class RefusedError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _restore_sigterm() -> Iterator[None]:
    # run_service installs its SIGTERM handler in this (the test) process.
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def logging_configured(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # The real configure_logging replaces the root handlers (pytest's capture among them).
    levels: list[str] = []
    monkeypatch.setattr(entrypoint_module, "configure_logging", levels.append)
    return levels


def _never_built(settings: Settings) -> Any:
    raise AssertionError("create_app must not run")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_setting_that_fails_validation_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENTRYPOINT_TEST_PORT", "70000")
    status = run_service("svc", Settings, _never_built, argv=[])
    assert status == EXIT_CONFIG == 2
    err = capsys.readouterr().err
    assert err.startswith("svc: invalid configuration: ")
    assert "port" in err
    assert "Traceback" not in err


def test_a_healthcheck_with_invalid_settings_is_unhealthy_not_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENTRYPOINT_TEST_PORT", "not-a-port")
    assert run_service("svc", Settings, _never_built, argv=["healthcheck"]) == 1
    assert capsys.readouterr().err.startswith("svc: invalid configuration: ")


def test_a_configuration_the_composition_root_refuses_exits_2(
    capsys: pytest.CaptureFixture[str], logging_configured: list[str]
) -> None:
    def refuse(settings: Settings) -> Any:
        raise RefusedError("SVC_JWT_SECRET must be set in environment 'production'")

    status = run_service("svc", Settings, refuse, config_errors=(RefusedError,), argv=[])
    assert status == 2
    assert capsys.readouterr().err == (
        "svc: invalid configuration: SVC_JWT_SECRET must be set in environment 'production'\n"
    )
    assert logging_configured == ["INFO"]


def test_an_error_not_declared_as_configuration_is_not_hidden(
    logging_configured: list[str],
) -> None:
    def crash(settings: Settings) -> Any:
        raise RefusedError("a bug, not a setting")

    with pytest.raises(RefusedError):
        run_service("svc", Settings, crash, argv=[])


def test_settings_refused_by_a_declared_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def read() -> Settings:
        raise RefusedError("DLQ_RETRY_POLICIES: unknown topic")

    assert run_service("svc", read, _never_built, config_errors=(RefusedError,), argv=[]) == 2
    assert "DLQ_RETRY_POLICIES: unknown topic" in capsys.readouterr().err


def test_unknown_arguments_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    def read() -> Settings:
        raise AssertionError("settings must not be read")

    commands = {"rotate-secrets": lambda settings: 0}
    status = run_service("svc", read, _never_built, commands=commands, argv=["serve", "--x"])
    assert status == 2
    assert capsys.readouterr().err == (
        "svc: unknown arguments 'serve --x'; usage: svc [healthcheck | rotate-secrets]\n"
    )


def test_a_command_gets_the_settings_and_its_status_is_the_exit_status(
    monkeypatch: pytest.MonkeyPatch, logging_configured: list[str]
) -> None:
    monkeypatch.setenv("ENTRYPOINT_TEST_LOG_LEVEL", "DEBUG")
    ran: list[Settings] = []

    def rotate(settings: Settings) -> int:
        ran.append(settings)
        return 1

    status = run_service(
        "svc", Settings, _never_built, commands={"rotate-secrets": rotate}, argv=["rotate-secrets"]
    )
    assert status == 1
    assert [s.log_level for s in ran] == ["DEBUG"]
    assert logging_configured == ["DEBUG"]


def test_healthcheck_probes_the_configured_port(
    monkeypatch: pytest.MonkeyPatch, logging_configured: list[str]
) -> None:
    monkeypatch.setenv("ENTRYPOINT_TEST_PORT", str(_free_port()))  # nothing listens there
    assert run_service("svc", Settings, _never_built, argv=["healthcheck"]) == 1
    assert logging_configured == []  # a health check leaves logging alone


_SERVICE = textwrap.dedent(
    """
    import sys
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings, SettingsConfigDict
    from integr8scode_telemetry import build_health_router, run_service, service_lifespan

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="ENTRYPOINT_TEST_")
        host: str = "127.0.0.1"
        port: int = 1
        log_level: str = "INFO"

    def create_app(settings):
        async def open_resources(stack):
            stack.close_with("telemetry", lambda: print("telemetry flushed", flush=True))
            def fail():
                raise RuntimeError("close failed")
            stack.close_with("mongo", fail)
            stack.close_with("workers", lambda: print("workers stopped", flush=True))
            print("started", flush=True)

        app = FastAPI(lifespan=service_lifespan("svc", open_resources))
        app.include_router(build_health_router("svc", []))
        return app

    sys.exit(run_service("svc", Settings, create_app))
    """
)


def test_a_served_service_stops_on_sigterm_with_status_0_after_every_close(
    tmp_path: Path,
) -> None:
    port = _free_port()
    script = tmp_path / "service.py"
    script.write_text(_SERVICE)
    env = {**os.environ, "ENTRYPOINT_TEST_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "the service never answered /health/live"
                time.sleep(0.05)  # the next connection attempt, not a synchronisation
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.splitlines() == ["started", "workers stopped", "telemetry flushed"]
    assert "svc: closing mongo failed; closing the rest" in err
    assert "RuntimeError: close failed" in err
