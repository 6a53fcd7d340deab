"""The execute use cases: accept, read, list, stream and cancel executions."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Tracer

from integr8scode_api.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    InProgressError,
    NotFoundError,
    ValidationFailedError,
)
from integr8scode_api.domain.execution_limits import RequestRejectedError
from integr8scode_api.domain.execution_ports import (
    CoordinatorReadModel,
    ExecutionStore,
    Publisher,
    StatusFeed,
)
from integr8scode_api.domain.execution_request import (
    ExecuteRequest,
    ExecutionPolicy,
    ValidatedRequest,
    validate_request,
)
from integr8scode_api.domain.executions import (
    BatchAccepted,
    BatchItem,
    BatchItemError,
    CancelAccepted,
    ExecuteAccepted,
    ExecutionBatch,
    ExecutionPage,
    ExecutionStatus,
    ExecutionView,
    NewExecution,
    RuntimeInfo,
    StatusChange,
    StoredExecution,
    Submission,
    view_of,
)
from integr8scode_api.domain.users import Role, User
from integr8scode_events import (
    ExecutionCancelRequested,
    ExecutionRequested,
    ProducerInfo,
    PublishError,
    PublishUncertainError,
    StoredTraceContext,
    decode_event,
)
from integr8scode_events.payloads import (
    CompileLimits,
    ExecutionCancelRequestedPayload,
    ExecutionFile,
    ExecutionLimits,
    ExecutionRequestedPayload,
)
from integr8scode_telemetry import attributes as a
from integr8scode_telemetry import resume_trace, set_span_attributes, untraced

# Admits one more execution for the caller, or says in how many seconds it may retry (the
# edge's rate limit for ``POST /execute``, asked per submission of a batch).
SubmissionGate = Callable[[], Awaitable[float | None]]
BATCH_ITEM_SPAN = "execute.batch_item"
WAIT_OUTCOME = "execution.wait.outcome"
WAIT_MS = "execution.wait.ms"

NOT_QUEUED = "not queued: the message broker did not accept the request; retry later"
IN_PROGRESS = (
    "the first request with this Idempotency-Key is still waiting for the message broker; "
    "retry shortly for its outcome"
)


def request_fingerprint(valid: ValidatedRequest) -> str:
    """What makes two requests the same request, for an ``Idempotency-Key``."""
    canonical = json.dumps(
        [
            valid.language,
            valid.language_version,
            valid.script,
            valid.stdin,
            valid.limits.model_dump(mode="json"),
            # Issue 14's fields, only when used: a request without them keeps its fingerprint.
            *(
                [
                    valid.stdin_encoding,
                    list(valid.args),
                    [[f.name, f.content, f.encoding] for f in valid.files],
                    valid.expected_stdout,
                ]
                if valid.args
                or valid.files
                or valid.expected_stdout is not None
                or valid.stdin_encoding != "utf-8"
                else []
            ),
            # Only when given: a request without them keeps its fingerprint.
            *([valid.compile_limits] if valid.compile_limits else []),
        ],
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_execution_id() -> str:
    return str(uuid.uuid4())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class ExecutionService:
    def __init__(
        self,
        *,
        executions: ExecutionStore,
        views: CoordinatorReadModel,
        publisher: Publisher,
        feed: StatusFeed,
        policy: ExecutionPolicy,
        producer: ProducerInfo,
        submit_timeout_s: float,
        clock: Callable[[], datetime] = _now,
        tracer: Tracer | None = None,
    ) -> None:
        self._submit_timeout_s = submit_timeout_s  # how long a publish waits for the broker
        self._executions = executions
        self._views = views
        self._publisher = publisher
        self._feed = feed
        self._policy = policy
        self._producer = producer
        self._clock = clock
        self._tracer = tracer or trace.get_tracer(__name__)

    async def runtimes(self) -> list[RuntimeInfo]:
        """Each language with its versions and its limits' defaults and maximums."""
        return [
            RuntimeInfo(**r.model_dump(), limits=self._policy.limits.table(r.language))
            for r in await self._views.runtimes()
        ]

    async def execute(
        self,
        user: User,
        request: ExecuteRequest,
        *,
        idempotency_key: str | None,
        client_address: str | None,
        base64: bool = False,
        execution_id: str | None = None,
    ) -> ExecuteAccepted:
        """Store the execution as queued and publish the request; 202 once the broker
        acknowledged it, or once it is in the submission outbox. ``execution_id``: the id a
        new execution gets (a fresh one by default); a retry with a known key answers its own.

        - Acknowledged: 202.
        - Refused before the producer took it (no broker answers): nobody has been told it
          was accepted, so it ends ``failed`` ("not queued") and the caller gets 503.
        - Taken but not confirmed in time: it may still arrive, so it is neither failed nor
          forgotten. It goes to the outbox, which re-publishes it (same event id; the
          coordinator takes an execution once) until the broker confirms: 202.

        With an ``Idempotency-Key`` a retry gets the same execution: 409 (retry shortly)
        while the first request still waits for the broker, then 202. So no client sees an
        execution accepted that later fails without running, and none sees a status change
        once it was terminal."""
        set_span_attributes(
            {
                a.USER_ID: user.id,
                a.EXECUTION_LANGUAGE: request.language,
                a.EXECUTION_SCRIPT_LENGTH: len(request.script.encode()),  # bytes, as the limit
                a.CLIENT_ADDRESS: client_address,
            }
        )
        try:
            valid = validate_request(
                request, await self._views.runtimes(), self._policy, base64=base64
            )
        except RequestRejectedError as exc:
            raise ValidationFailedError(str(exc)) from exc
        execution_id = execution_id or new_execution_id()
        fingerprint = request_fingerprint(valid)
        if idempotency_key:
            existing = await self._executions.claim_idempotency_key(
                user.id, idempotency_key, execution_id
            )
            if existing is not None:
                replayed = await self._replay_idempotent(
                    user, existing, valid, fingerprint, idempotency_key
                )
                if replayed is not None:
                    return replayed
                execution_id = existing  # its first request died before storing it: go on
        set_span_attributes(
            {a.EXECUTION_ID: execution_id, a.EXECUTION_LANGUAGE_VERSION: valid.language_version}
        )
        span_context = trace.get_current_span().get_span_context()
        new = NewExecution(
            execution_id=execution_id,
            user_id=user.id,
            language=valid.language,
            language_version=valid.language_version,
            script_length=len(valid.script.encode()),
            limits=valid.limits,
            created_at=self._clock(),
            trace_id=format(span_context.trace_id, "032x") if span_context.is_valid else None,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint if idempotency_key else None,
            # What a concurrent retry with the same key must wait for.
            submission=Submission.PENDING if idempotency_key else None,
        )
        if not await self._executions.create(new):
            raise InProgressError(IN_PROGRESS)  # a concurrent retry took over that dead request
        event = self._requested_event(execution_id, user, valid)
        try:
            await self._publisher.publish(event)
        except PublishUncertainError:
            await self._executions.to_outbox(
                execution_id, event.to_bytes().decode(), StoredTraceContext.capture()
            )
            if idempotency_key:
                await self._executions.set_submission(execution_id, Submission.OUTBOX)
            set_span_attributes({"execution.submission": Submission.OUTBOX.value})
            return ExecuteAccepted(execution_id=execution_id, status=ExecutionStatus.QUEUED)
        except PublishError as exc:
            await self._executions.mark_not_queued(execution_id, NOT_QUEUED)
            if idempotency_key:
                await self._executions.release_idempotency_key(user.id, idempotency_key)
            raise DependencyUnavailableError(NOT_QUEUED) from exc
        if idempotency_key:
            await self._executions.set_submission(execution_id, Submission.ACKED)
        return ExecuteAccepted(execution_id=execution_id, status=ExecutionStatus.QUEUED)

    def _requested_event(
        self, execution_id: str, user: User, valid: ValidatedRequest
    ) -> ExecutionRequested:
        return ExecutionRequested(
            producer=self._producer,
            correlation_id=execution_id,
            execution_id=execution_id,
            user_id=user.id,
            payload=ExecutionRequestedPayload(
                script=valid.script,
                language=valid.language,
                language_version=valid.language_version,
                stdin=valid.stdin,
                stdin_encoding=valid.stdin_encoding,
                limits=ExecutionLimits(**valid.limits.model_dump()),
                args=valid.args,
                files=tuple(
                    ExecutionFile(name=f.name, content=f.content, encoding=f.encoding)
                    for f in valid.files
                ),
                expected_stdout=valid.expected_stdout,
                compile_limits=(
                    CompileLimits.model_validate(valid.compile_limits)
                    if valid.compile_limits
                    else None
                ),
            ),
        )

    async def _replay_idempotent(
        self,
        user: User,
        execution_id: str,
        valid: ValidatedRequest,
        fingerprint: str,
        key: str,
    ) -> ExecuteAccepted | None:
        """The answer for a retry with a key already bound to ``execution_id``; None when the
        first request died before storing the execution, for the caller to store it now."""
        stored = await self._executions.get(execution_id)
        if stored is None:
            bound_at = await self._executions.idempotency_key_bound_at(user.id, key)
            if bound_at is not None and self._stale(bound_at):
                return None
            raise InProgressError(IN_PROGRESS)  # the first request is still storing it
        if stored.request_fingerprint not in (None, fingerprint):
            raise ValidationFailedError(
                "Idempotency-Key was already used for a different request; use a new key"
            )
        set_span_attributes({a.EXECUTION_ID: execution_id, "idempotency.replayed": True})
        status = stored.status
        if stored.submission is Submission.PENDING and status is ExecutionStatus.QUEUED:
            if not self._stale(stored.created_at):
                raise InProgressError(IN_PROGRESS)
            # The first request died before it knew: submit it again (the coordinator takes an
            # execution once however often it arrives).
            await self._resubmit(execution_id, self._requested_event(execution_id, user, valid))
        return ExecuteAccepted(execution_id=execution_id, status=status)

    def _stale(self, since: datetime) -> bool:
        """Older than any request still waiting for the broker can be (twice its timeout)."""
        age_s = (self._clock() - _aware(since)).total_seconds()
        return age_s >= self._submit_timeout_s * 2

    async def _resubmit(self, execution_id: str, event: ExecutionRequested) -> None:
        try:
            await self._publisher.publish(event)
        except PublishUncertainError:
            await self._executions.to_outbox(
                execution_id, event.to_bytes().decode(), StoredTraceContext.capture()
            )
            await self._executions.set_submission(execution_id, Submission.OUTBOX)
            return
        except PublishError as exc:
            raise DependencyUnavailableError(NOT_QUEUED) from exc
        await self._executions.set_submission(execution_id, Submission.ACKED)

    async def flush_outbox(self, limit: int = 100) -> int:
        """Re-publish the requests the broker has not confirmed yet, oldest first; returns how
        many it confirmed. Stops at the first one the broker still doesn't take."""
        confirmed = 0
        with untraced():  # a poll: no trace of its own
            entries = await self._executions.outbox_entries(limit)
        for entry in entries:
            # The retry is part of the request's trace, not a trace of its own.
            with resume_trace(entry.trace.span_context):
                try:
                    await self._publisher.publish(decode_event(entry.event.encode()))
                    await self._executions.confirmed(entry.execution_id)
                except PublishError:
                    break
            confirmed += 1
        return confirmed

    async def get(self, user: User, execution_id: str, *, base64: bool = False) -> ExecutionView:
        stored = await self._owned(user, execution_id)
        status = stored.status
        result = await self._views.result(execution_id) if status.terminal else None
        position = (
            await self._views.queue_position(execution_id)
            if status is ExecutionStatus.QUEUED
            else None
        )
        return view_of(stored, result, position, as_base64=base64)

    async def list(self, user: User, limit: int, offset: int) -> ExecutionPage:
        found, total = await self._executions.list_for_user(user.id, limit, offset)
        return ExecutionPage(
            items=[view_of(e, None, None) for e in found], limit=limit, offset=offset, total=total
        )

    async def cancel(self, user: User, execution_id: str) -> CancelAccepted:
        stored = await self._owned(user, execution_id)
        if stored.status.terminal:
            raise ConflictError(f"execution {execution_id} already ended as {stored.status.value}")
        event = ExecutionCancelRequested(
            producer=self._producer,
            correlation_id=stored.correlation_id or execution_id,
            execution_id=execution_id,
            user_id=stored.user_id,
            payload=ExecutionCancelRequestedPayload(requested_by=user.id),
        )
        try:
            await self._publisher.publish(event)
        except PublishError as exc:
            raise DependencyUnavailableError(
                "the cancel request could not be queued; retry"
            ) from exc
        return CancelAccepted(execution_id=execution_id)

    async def execute_and_wait(
        self,
        user: User,
        request: ExecuteRequest,
        wait_s: float,
        *,
        idempotency_key: str | None,
        client_address: str | None,
        base64: bool = False,
    ) -> ExecuteAccepted | ExecutionView:
        """``execute``, then the whole result if the execution ends within ``wait_s``, waiting
        on the status feed (the one SSE streams use; no polling); else what ``execute``
        answered. The feed is subscribed before the request is published, so the wait needs
        no read until the end. A retry with a known key waits for that execution (subscribed,
        then read once). Once accepted, nothing here turns the answer into an error: a feed or
        a store that can't tell means the 202."""
        execution_id = new_execution_id()
        async with contextlib.AsyncExitStack() as stack:
            changes: AsyncIterator[StatusChange | None] | None
            try:
                changes = await stack.enter_async_context(self._feed.subscribe(execution_id))
            except DependencyUnavailableError:
                changes = None
            accepted = await self.execute(
                user,
                request,
                idempotency_key=idempotency_key,
                client_address=client_address,
                base64=base64,
                execution_id=execution_id,
            )
            if changes is None:
                return accepted
            if accepted.execution_id != execution_id:  # an earlier request's execution
                await stack.aclose()
                view = await self.wait_for_end(user, accepted.execution_id, wait_s, base64=base64)
                return view or accepted
            view = await self._wait_on(
                changes, user, execution_id, wait_s, base64=base64, read_first=False
            )
            return view or accepted

    async def wait_for_end(
        self, user: User, execution_id: str, wait_s: float, *, base64: bool = False
    ) -> ExecutionView | None:
        """The whole result once the execution ended, waiting at most ``wait_s`` on the status
        feed; None when it has not ended by then, or the feed or the store can't tell."""
        try:
            async with self._feed.subscribe(execution_id) as changes:
                # Subscribed first, then read: a change in between is in the queue.
                return await self._wait_on(
                    changes, user, execution_id, wait_s, base64=base64, read_first=True
                )
        except DependencyUnavailableError:
            set_span_attributes({WAIT_OUTCOME: "unavailable"})
            return None

    async def _wait_on(
        self,
        changes: AsyncIterator[StatusChange | None],
        user: User,
        execution_id: str,
        wait_s: float,
        *,
        base64: bool,
        read_first: bool,
    ) -> ExecutionView | None:
        started = time.monotonic()
        outcome = "timeout"
        try:
            async with asyncio.timeout(wait_s):
                ended = read_first and await self._ended(execution_id)
                while not ended:
                    change = await anext(changes)
                    # None: idle, or the feed re-subscribed (it may have missed one): re-read.
                    ended = (
                        await self._ended(execution_id)
                        if change is None
                        else change.status.terminal
                    )
            outcome = "ended"
            return await self.get(user, execution_id, base64=base64)
        except TimeoutError:
            return None
        except DependencyUnavailableError:
            outcome = "unavailable"
            return None
        finally:
            waited_ms = round((time.monotonic() - started) * 1000, 1)
            set_span_attributes({WAIT_OUTCOME: outcome, WAIT_MS: waited_ms})

    async def _ended(self, execution_id: str) -> bool:
        stored = await self._executions.get(execution_id)
        return stored is not None and stored.status.terminal

    async def submit_batch(
        self,
        user: User,
        submissions: Sequence[ExecuteRequest],
        *,
        max_batch: int,
        admit: SubmissionGate,
        client_address: str | None,
        base64: bool = False,
    ) -> BatchAccepted:
        """Each submission as its own ``execute`` (its own execution and its own trace, a
        root linked to the batch request's span), one after the other; one that is refused
        (bad input, over the caller's execute rate limit, a dependency down) gets its error
        and refuses no other."""
        if len(submissions) > max_batch:
            raise ValidationFailedError(
                f"submissions: {len(submissions)} is above the maximum {max_batch}"
            )
        batch_span = trace.get_current_span().get_span_context()
        links = [Link(batch_span)] if batch_span.is_valid else []
        set_span_attributes({a.USER_ID: user.id, "batch.size": len(submissions)})
        items: list[BatchItem] = []
        for index, submission in enumerate(submissions):
            # A root span of its own (an empty parent context), linked to the batch request.
            with self._tracer.start_as_current_span(
                BATCH_ITEM_SPAN,
                context=otel_context.Context(),
                kind=trace.SpanKind.SERVER,
                links=links,
                attributes={"batch.index": index, a.USER_ID: user.id},
            ):
                item = await self._batch_item(
                    user, index, submission, admit=admit, client=client_address, base64=base64
                )
                items.append(item)
        accepted = sum(item.execution_id is not None for item in items)
        set_span_attributes({"batch.accepted": accepted})
        return BatchAccepted(items=items, accepted=accepted)

    async def _batch_item(
        self,
        user: User,
        index: int,
        submission: ExecuteRequest,
        *,
        admit: SubmissionGate,
        client: str | None,
        base64: bool,
    ) -> BatchItem:
        retry_after = await admit()
        if retry_after is not None:
            detail = f"rate limited: retry after {retry_after:g} s"
            set_span_attributes({a.ERROR_TYPE: "rate_limited"})
            return BatchItem(
                index=index,
                error=BatchItemError(status=429, detail=detail, retry_after_s=retry_after),
            )
        try:
            accepted = await self.execute(
                user, submission, idempotency_key=None, client_address=client, base64=base64
            )
        except ValidationFailedError as exc:
            return BatchItem(index=index, error=BatchItemError(status=422, detail=exc.detail))
        except DependencyUnavailableError as exc:
            return BatchItem(index=index, error=BatchItemError(status=503, detail=exc.detail))
        return BatchItem(index=index, execution_id=accepted.execution_id, status=accepted.status)

    async def get_many(
        self, user: User, execution_ids: Sequence[str], *, max_ids: int, base64: bool = False
    ) -> ExecutionBatch:
        """Several executions at once, in the order asked; ids that are not the caller's
        executions (or none) are listed as missing."""
        wanted = list(dict.fromkeys(i for i in execution_ids if i))
        if not wanted:
            raise ValidationFailedError("ids: give at least one execution id")
        if len(wanted) > max_ids:
            raise ValidationFailedError(f"ids: {len(wanted)} is above the maximum {max_ids}")

        async def one(execution_id: str) -> ExecutionView | None:
            try:
                return await self.get(user, execution_id, base64=base64)
            except NotFoundError:
                return None

        found = await asyncio.gather(*(one(i) for i in wanted))
        return ExecutionBatch(
            items=[view for view in found if view is not None],
            missing=[i for i, view in zip(wanted, found, strict=True) if view is None],
        )

    async def stream(self, user: User, execution_id: str) -> StatusStream:
        """Server-sent events: every status so far, then each change, ending at a terminal one.

        Subscribed first, then read once: that read is both the ownership check (404 before
        the stream starts, the subscription closed) and the history the stream begins with,
        and no change falls between the two. The caller must ``close()`` the stream once the
        response is over, sent or not (an events iterator never started runs no cleanup)."""
        subscription = contextlib.AsyncExitStack()
        changes = await subscription.enter_async_context(self._feed.subscribe(execution_id))
        try:
            stored = await self._owned(user, execution_id)
        except BaseException:
            await subscription.aclose()
            raise
        return StatusStream(
            events=self._stream(execution_id, stored, changes, subscription),
            close=subscription.aclose,
        )

    async def _stream(
        self,
        execution_id: str,
        first: StoredExecution,
        changes: AsyncIterator[StatusChange | None],
        subscription: contextlib.AsyncExitStack,
    ) -> AsyncIterator[str]:
        async with subscription:
            sent: set[ExecutionStatus] = set()

            def unsent(history: Iterable[StatusChange]) -> list[str]:
                fresh = [c for c in history if c.status not in sent]
                sent.update(c.status for c in fresh)
                return [_sse(c, execution_id) for c in fresh]

            async def replay_stored() -> tuple[list[str], bool]:
                stored = await self._executions.get(execution_id)
                if stored is None:
                    return [], False
                return unsent(stored.status_history), stored.status.terminal

            for event in unsent(first.status_history):
                yield event
            if first.status.terminal:
                return
            async for change in changes:
                if change is not None:
                    for event in unsent([change]):
                        yield event
                    if change.status.terminal:
                        return
                    continue
                yield ": keep-alive\n\n"
                # Idle: a missed message must not leave the stream open forever, so re-read.
                events, terminal = await replay_stored()
                for event in events:
                    yield event
                if terminal:
                    return

    async def _owned(self, user: User, execution_id: str) -> StoredExecution:
        stored = await self._executions.get(execution_id)
        if stored is None or (stored.user_id != user.id and user.role is not Role.ADMIN):
            raise NotFoundError(f"execution {execution_id} not found")
        return stored


@dataclass(frozen=True)
class StatusStream:
    """An execution's SSE events, and how to end its subscription whatever became of them."""

    events: AsyncIterator[str]
    close: Callable[[], Awaitable[None]]


def _sse(change: StatusChange, execution_id: str) -> str:
    payload = json.dumps(
        {"execution_id": execution_id, "status": change.status.value, "at": change.at.isoformat()}
    )
    return f"event: status\ndata: {payload}\n\n"


__all__ = ["ExecutionService", "StatusStream"]
