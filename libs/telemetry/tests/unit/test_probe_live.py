"""``probe_live``: the container health check's exit status, against a real local listener."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integr8scode_telemetry import probe_live


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/live" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_live_service_on_the_configured_port_is_healthy(server: ThreadingHTTPServer) -> None:
    assert probe_live("127.0.0.1", server.server_address[1]) == 0


def test_a_wildcard_bind_address_is_probed_on_loopback(server: ThreadingHTTPServer) -> None:
    assert probe_live("0.0.0.0", server.server_address[1]) == 0


def test_nothing_listening_is_unhealthy(server: ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert probe_live("127.0.0.1", port, timeout_s=1) == 1
