"""The saga per execution: validate → reserve slot → run → store result → release.

``accept`` (called by the Kafka handler) validates and queues; ``run`` (called by the scheduler
once a slot is held) drives the sandbox and ends the saga. Each step is a ``saga.step`` span and
its state is persisted before the next begins, so a restarted coordinator can resume or fail
the execution cleanly. The terminal event goes through an outbox: ``finish`` stores it (storing
it is what ends the saga, once), then it is published and marked; the scheduler republishes any
terminal event left unpublished by a crash (same ``event_id``, so consumers apply it once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from integr8scode_coordinator.domain import inputs, outcomes
from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.ports import Publisher, ResultStore, SagaStore, SlotPool
from integr8scode_coordinator.domain.saga import (
    SAGA_NAME,
    ExecutionRequest,
    Saga,
    SagaStatus,
    SagaStep,
    TerminalReason,
)
from integr8scode_coordinator.sandbox import (
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    SandboxRunner,
    WorkFile,
    args_problem,
    files_problem,
)
from integr8scode_events import (
    EventEnvelope,
    ExecutionStarted,
    ProducerInfo,
    PublishError,
    StoredTraceContext,
    decode_event,
)
from integr8scode_events.payloads import ExecutionStartedPayload
from integr8scode_spans import start_current_span
from integr8scode_telemetry import attributes as a
from integr8scode_telemetry import resume_trace

log = logging.getLogger(__name__)

PLATFORM_ERRORS: dict[type[Exception], str] = {
    StoreUnavailableError: "the execution store was unavailable; the result could not be kept",
}


def _platform_error(exc: Exception) -> str:
    known = PLATFORM_ERRORS.get(type(exc))
    if known is not None:
        return known
    first_line = (str(exc).splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _compile_document(result: SandboxResult) -> dict[str, Any]:
    """A compiled language's compile phase, as ``execution_results.compile`` (none otherwise)."""
    if result.compile is None:
        return {}
    return {
        "compile": {
            "exit_code": result.compile.exit_code,
            "stdout": inputs.storable_text(result.compile.stdout),
            "stderr": inputs.storable_text(result.compile.stderr),
            "wall_time_ms": result.compile.wall_time_ms,
        }
    }


def _raw_output(result: SandboxResult) -> dict[str, bytes]:
    """The kept bytes of a stream whose text reading is not exact (not UTF-8, or a character
    cut by the cap), for clients that ask for output in base64; text output needs no copy."""
    raw: dict[str, bytes] = {}
    for name, text, data in (
        ("stdout_raw", result.stdout, result.stdout_bytes),
        ("stderr_raw", result.stderr, result.stderr_bytes),
    ):
        if data and inputs.storable_text(text).encode() != data:
            raw[name] = data
    return raw


@dataclass(frozen=True)
class RunPolicy:
    """Limits the coordinator enforces whatever a request asks for."""

    max_timeout_s: float
    max_memory_mb: int
    max_output_bytes: int  # per stream; also the default when a request names none
    lease: timedelta
    per_user: int
    store_retry_s: float = 30.0  # how long a finished run waits for the store to come back
    max_cpu_time_s: float = 30.0
    max_processes: int = 128
    default_processes: int = 64  # when a request names none


class ExecutionSaga:
    def __init__(
        self,
        *,
        store: SagaStore,
        slots: SlotPool,
        results: ResultStore,
        runner: SandboxRunner,
        publisher: Publisher,
        producer: ProducerInfo,
        policy: RunPolicy,
        instance_id: str,
        tracer: trace.Tracer,
    ) -> None:
        self._store = store
        self._slots = slots
        self._results = results
        self._runner = runner
        self._publisher = publisher
        self._producer = producer
        self._policy = policy
        self.instance_id = instance_id
        self._tracer = tracer

    # -- accept (Kafka handler) --------------------------------------------------------------

    async def accept(self, request: ExecutionRequest) -> bool:
        """Validate and queue; True if a new saga was queued (False: redelivery or rejected)."""
        request, unstorable = request.storable()
        with self._step(request.execution_id, SagaStep.VALIDATE) as span:
            problem = unstorable or self.validate(request)
            if problem is not None:
                span.set_attribute("saga.rejected", problem)
        saga = Saga(
            execution_id=request.execution_id,
            user_id=request.user_id,
            correlation_id=request.correlation_id,
            request=request,
            status=SagaStatus.QUEUED,
            enqueued_at=datetime.now(UTC),
            trace=StoredTraceContext.capture(),  # the consume span: queued runs continue it
            steps=[SagaStep.VALIDATE.value],
        )
        created = await self._store.create(saga)
        if problem is not None:
            # Also on a redelivery: a crash between queueing and failing must not leave an
            # invalid request in the queue, to be run past the limits that refused it.
            event = outcomes.failed_event(
                request, self._producer, problem, TerminalReason.INVALID_REQUEST
            )
            await self._finish(
                request.execution_id,
                SagaStatus.FAILED,
                event,
                only_from=SagaStatus.QUEUED,
                error=problem,
            )
            return False
        return created

    def validate(self, request: ExecutionRequest) -> str | None:
        """Why the request can't run, or None."""
        runtimes = {r.language: r for r in self._runner.runtimes()}
        runtime = runtimes.get(request.language)
        if runtime is None:
            return f"language {request.language!r} is not available on this coordinator"
        if request.language_version not in runtime.versions:
            return (
                f"{request.language} {request.language_version} is not available "
                f"(have {', '.join(runtime.versions)})"
            )
        if request.timeout_s > self._policy.max_timeout_s:
            return (
                f"timeout_s {request.timeout_s} is above the maximum {self._policy.max_timeout_s}"
            )
        if request.memory_mb > self._policy.max_memory_mb:
            return (
                f"memory_mb {request.memory_mb} is above the maximum {self._policy.max_memory_mb}"
            )
        return self._limits_problem(request) or self._inputs_problem(request, runtime.script_file)

    def _limits_problem(self, request: ExecutionRequest) -> str | None:
        policy = self._policy
        checks: tuple[tuple[str, float | None, float], ...] = (
            ("cpu_time_s", request.cpu_time_s, policy.max_cpu_time_s),
            ("max_processes", request.max_processes, policy.max_processes),
            ("max_output_kb", request.max_output_kb, policy.max_output_bytes // 1024),
        )
        for name, value, maximum in checks:
            if value is not None and value > maximum:
                return f"{name} {value:g} is above the maximum {maximum:g}"
        return None

    def _inputs_problem(self, request: ExecutionRequest, script_file: str) -> str | None:
        """Files, arguments and encodings, checked again here: the API refuses them at its
        edge, but an event may come from elsewhere (a replay, another producer)."""
        try:
            files = self._work_files(request)
            inputs.decode(request.stdin, request.stdin_encoding, "stdin")
        except inputs.InvalidInputError as exc:
            return str(exc)
        return files_problem(files, script_file) or args_problem(request.args)

    @staticmethod
    def _work_files(request: ExecutionRequest) -> tuple[WorkFile, ...]:
        return tuple(
            WorkFile(f.name, inputs.decode(f.content, f.encoding, f"file {f.name!r}"))
            for f in request.files
        )

    # -- cancel ------------------------------------------------------------------------------

    async def cancel_queued(self, saga: Saga, cancelled_by: str) -> bool:
        """Cancel a saga that has not started; False if it already left the queue."""
        event = outcomes.cancelled_event(saga.request, self._producer, cancelled_by)
        return await self._finish(
            saga.execution_id,
            SagaStatus.CANCELLED,
            event,
            only_from=SagaStatus.QUEUED,
            error="cancelled while queued",
        )

    # -- run (scheduler, slot held) ----------------------------------------------------------

    async def run(self, saga: Saga, cancel: asyncio.Event) -> SagaStatus:
        """Run a reserved saga to its terminal state, then release its slot.

        The slot is released only once the saga has ended: it is the janitor's only handle on a
        run. If the saga can't be ended (the store is down through the run and its
        compensation, or the task is cancelled at shutdown), the slot stays; its lease lapses
        (the heartbeat renews only live runs) and a live instance's janitor ends the saga."""
        request = saga.request
        with start_current_span(
            self._tracer,
            "saga.execution",
            context=saga.trace.context(),
            attributes={
                a.SAGA_NAME: SAGA_NAME,
                a.SAGA_ID: saga.execution_id,
                a.EXECUTION_ID: saga.execution_id,
                a.USER_ID: saga.user_id,
                "saga.queue_wait_ms": self._queue_wait_ms(saga),
            },
        ) as span:
            try:
                status = await self._run_steps(saga, request, cancel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - compensate: the saga must end, not hang
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                status = await self._compensate(request, exc)  # raises if it can't end it
            await self._release(saga.execution_id, self.instance_id)
            span.set_attribute(a.EXECUTION_STATUS, status.value)
            if status is SagaStatus.TIMED_OUT:
                span.set_attribute(a.ERROR_TYPE, "timeout")
                span.set_status(Status(StatusCode.ERROR, "the run timed out"))
            return status

    async def _run_steps(
        self, saga: Saga, request: ExecutionRequest, cancel: asyncio.Event
    ) -> SagaStatus:
        started_at = datetime.now(UTC)
        exclusive_until = self._exclusive_until(saga)
        with self._step(request.execution_id, SagaStep.RUN):
            await self._store.record_step(
                request.execution_id,
                SagaStep.RUN.value,
                SagaStatus.RUNNING,
                exclusive_until=exclusive_until,
                started_at=started_at,
            )
            await self._publish_started(request, started_at, self._queue_wait_ms(saga))
            result = await self._runner.run(self._sandbox_request(request), cancel)
        # The run is done and its result in hand: a store that is down for a while must not
        # turn it into a failure. Retry until ``store_retry_s`` (the heartbeat keeps the slot).
        document = self._result_document(request, result)
        status = outcomes.status_of(result)
        event = outcomes.terminal_event(request, result, self._producer, cancelled_by="user")

        async def store_and_finish() -> None:
            with self._step(request.execution_id, SagaStep.STORE_RESULT):
                await self._results.save(request.execution_id, document)
            # The step is recorded with the terminal status, in one write: a crash before it
            # leaves the saga running either way, and the janitor fails a running saga whatever
            # its last step.
            await self._finish(
                request.execution_id,
                status,
                event,
                error=result.error,
                steps=[SagaStep.STORE_RESULT.value],
                exclusive_until=exclusive_until,
            )

        await self._retrying_store(store_and_finish)
        return status

    async def _retrying_store(self, operation: Callable[[], Awaitable[None]]) -> None:
        deadline = asyncio.get_running_loop().time() + self._policy.store_retry_s
        delay = 0.2
        while True:
            try:
                await operation()
            except StoreUnavailableError as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                log.warning("execution store unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)  # backoff while the store is away
                delay = min(delay * 2, 5.0)
                continue
            return

    async def _compensate(self, request: ExecutionRequest, exc: Exception) -> SagaStatus:
        with self._step(request.execution_id, SagaStep.COMPENSATE):
            # What the client reads: what went wrong, not the driver's internals (those are in
            # the log and on the span).
            error = f"platform error: {_platform_error(exc)}"
            log.exception("saga %s failed; compensating", request.execution_id)
            event = outcomes.failed_event(
                request, self._producer, error, TerminalReason.PLATFORM_ERROR
            )
            await self._finish(request.execution_id, SagaStatus.FAILED, event, error=error)
        return SagaStatus.FAILED

    async def fail_lost(self, saga: Saga) -> bool:
        """End a saga whose coordinator died mid-run (its sandbox died with it) and free the
        slot that coordinator held for it."""
        with start_current_span(
            self._tracer,
            "saga.recover",
            attributes={a.SAGA_ID: saga.execution_id, a.EXECUTION_ID: saga.execution_id},
        ):
            error = "the coordinator running this execution stopped; the run was lost"
            event = outcomes.failed_event(
                saga.request, self._producer, error, TerminalReason.PLATFORM_ERROR
            )
            finished = await self._finish(saga.execution_id, SagaStatus.FAILED, event, error=error)
            await self._release(saga.execution_id, saga.owner or self.instance_id)
            return finished

    async def _release(self, execution_id: str, owner: str) -> None:
        with self._step(execution_id, SagaStep.RELEASE):
            await self._slots.release(execution_id, owner)

    # -- terminal outbox ---------------------------------------------------------------------

    async def _finish(
        self,
        execution_id: str,
        status: SagaStatus,
        event: EventEnvelope,
        *,
        only_from: SagaStatus | None = None,
        error: str | None = None,
        steps: Sequence[str] = (),
        exclusive_until: datetime | None = None,
    ) -> bool:
        finished = await self._store.finish(
            execution_id,
            status,
            event.model_dump(mode="json"),
            only_from=only_from,
            error=error,
            steps=steps,
            exclusive_until=exclusive_until,
        )
        if finished:
            await self.publish_terminal(event)
        return finished

    async def publish_terminal(self, event: EventEnvelope) -> None:
        """Publish a stored terminal event and mark it; on failure the outbox sweep retries."""
        try:
            await self._publisher.publish(event)
        except PublishError:
            log.warning("terminal event of %s not published yet; will retry", event.execution_id)
            return
        if event.execution_id:
            await self._store.mark_published(event.execution_id)

    async def republish(self, stored: dict[str, Any]) -> None:
        """Outbox sweep: publish a terminal event a crash or outage left unpublished, in the
        trace of its execution (the context its saga stored when it was queued)."""
        event = decode_event(json.dumps(stored).encode())
        saga = await self._store.get(event.execution_id) if event.execution_id else None
        with resume_trace(saga.trace.span_context if saga else None):
            await self.publish_terminal(event)

    # -- helpers -----------------------------------------------------------------------------

    async def _publish_started(
        self, request: ExecutionRequest, started_at: datetime, queue_wait_ms: float
    ) -> None:
        event = ExecutionStarted(
            producer=self._producer,
            correlation_id=request.correlation_id,
            execution_id=request.execution_id,
            user_id=request.user_id,
            payload=ExecutionStartedPayload(
                runner=self._runner.name, started_at=started_at, queue_wait_ms=queue_wait_ms
            ),
        )
        try:
            await self._publisher.publish(event)
        except PublishError as exc:
            # Informational only: the terminal event (outbox) is what must not be lost.
            trace.get_current_span().record_exception(exc)
            log.warning("execution.started of %s not published: %s", request.execution_id, exc)

    def _sandbox_request(self, request: ExecutionRequest) -> SandboxRequest:
        """The run as the sandbox takes it; a limit the request leaves out gets the
        coordinator's default (CPU time: the wall-clock limit, as before limits were split)."""
        output_kb = request.max_output_kb
        return SandboxRequest(
            execution_id=request.execution_id,
            language=request.language,
            language_version=request.language_version,
            script=request.script,
            stdin=inputs.decode(request.stdin, request.stdin_encoding, "stdin"),
            limits=SandboxLimits(
                timeout_s=request.timeout_s,
                memory_mb=request.memory_mb,
                cpu_time_s=request.cpu_time_s or request.timeout_s,
                max_processes=request.max_processes or self._policy.default_processes,
                max_output_bytes=(output_kb * 1024 if output_kb else self._policy.max_output_bytes),
            ),
            args=request.args,
            files=self._work_files(request),
            compile_limits=_compile_limits(request),
        )

    def _result_document(self, request: ExecutionRequest, result: SandboxResult) -> dict[str, Any]:
        return {
            "_id": request.execution_id,
            "user_id": request.user_id,
            "status": outcomes.status_of(result).value,
            "exit_code": result.exit_code,
            "signal": result.signal,
            # The store can't hold a NUL in a string: the text loses it, ``*_raw`` keeps it.
            "stdout": inputs.storable_text(result.stdout),
            "stderr": inputs.storable_text(result.stderr),
            "stdout_truncated": result.stdout_truncated,
            "stderr_truncated": result.stderr_truncated,
            "resource_usage": {
                "cpu_time_ms": result.cpu_time_ms,
                "wall_time_ms": result.wall_time_ms,
                "peak_memory_kb": result.peak_memory_kb,
            },
            "error": result.error,
            "runner": self._runner.name,
            "stored_at": datetime.now(UTC),
            **_raw_output(result),
            **self._verdict(request, result),
            **_compile_document(result),
        }

    @staticmethod
    def _verdict(request: ExecutionRequest, result: SandboxResult) -> dict[str, str]:
        if request.expected_stdout is None or result.outcome == "cancelled":
            return {}
        return {
            "verdict": inputs.verdict(
                request.expected_stdout,
                stdout=result.stdout,
                completed=result.outcome == "completed",
                exit_code=result.exit_code,
                truncated=result.stdout_truncated,
            )
        }

    def _exclusive_until(self, saga: Saga) -> datetime | None:
        """Until when this instance alone can move ``saga``: it claimed it with a lease until
        ``saga.lease_until`` (the scheduler's claim; the heartbeat may only extend it); half a
        lease is left as an allowance for other instances' clocks running ahead of ours."""
        if saga.owner != self.instance_id or saga.lease_until is None:
            return None
        return saga.lease_until - self._policy.lease / 2

    @staticmethod
    def _queue_wait_ms(saga: Saga) -> float:
        return max(0.0, (datetime.now(UTC) - saga.enqueued_at).total_seconds() * 1000)

    @contextmanager
    def _step(self, execution_id: str, step: SagaStep) -> Iterator[Span]:
        with start_current_span(
            self._tracer,
            "saga.step",
            attributes={
                a.SAGA_NAME: SAGA_NAME,
                a.SAGA_ID: execution_id,
                a.SAGA_STEP: step.value,
                a.EXECUTION_ID: execution_id,
            },
        ) as span:
            yield span


def _compile_limits(request: ExecutionRequest) -> SandboxLimits | None:
    """The compile limits the request asked for, as the runner takes them: it keeps its own
    where a request's is higher, so a limit the request left out is given as no limit."""
    asked = request.compile_limits
    if not asked:
        return None
    output_kb = asked.get("max_output_kb")
    return SandboxLimits(
        timeout_s=float(asked.get("timeout_s", math.inf)),
        memory_mb=int(asked.get("memory_mb", sys.maxsize)),
        cpu_time_s=float(asked.get("cpu_time_s", math.inf)),
        max_processes=int(asked.get("max_processes", sys.maxsize)),
        max_output_bytes=int(output_kb * 1024) if output_kb else sys.maxsize,
    )
