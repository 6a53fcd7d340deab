"""An in-process stand-in for the OTel collector's OTLP gRPC trace receiver (unit tests of the
exporters; the real collector is the integration tests')."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

# The OTLP trace service's one method (opentelemetry/proto/collector/trace/v1).
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class FakeCollector:
    """A gRPC server answering the OTLP trace service's Export with the raw request bytes kept,
    or with ``fail_with`` when set. ``hold()`` makes every Export wait until ``release()``
    (``waiting`` is set while one does)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.fail_with: grpc.StatusCode | None = None
        self.waiting = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        service, method = EXPORT_METHOD.rsplit("/", 1)
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=lambda raw: raw,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.lstrip("/"), {method: handler}),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _export(self, request: bytes, context: Any) -> ExportTraceServiceResponse:
        if not self._open.is_set():
            self.waiting.set()
            self._open.wait(60)
        if self.fail_with is not None:
            context.abort(self.fail_with, "refused by the test")
        self.requests.append(request)
        return ExportTraceServiceResponse()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def spans(self) -> list[Any]:
        """Every span received so far, in order."""
        return [
            span
            for raw in list(self.requests)
            for resource in ExportTraceServiceRequest.FromString(raw).resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def stop(self) -> None:
        self._open.set()
        self._server.stop(None)
