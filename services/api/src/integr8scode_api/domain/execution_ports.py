"""What the execution use cases need from the outside world, as Protocols the adapters
implement (and the unit tests fake). Every method raises ``DependencyUnavailableError`` when its
backing service is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from integr8scode_api.domain.executions import (
        ExecutionResult,
        ExecutionStatus,
        NewExecution,
        OutboxEntry,
        Runtime,
        StatusChange,
        StoredExecution,
        Submission,
    )
    from integr8scode_events import StoredTraceContext
    from integr8scode_events.envelope import EventEnvelope


class ExecutionStore(Protocol):
    """Executions, the ``Idempotency-Key`` bindings and the submission outbox (collections
    ``executions``, ``idempotency_keys``, ``submission_outbox``: the API's own; the notifier
    reads ``executions``)."""

    async def create(self, execution: NewExecution) -> bool:
        """Store a new execution; False if one with its id exists already."""
        ...

    async def get(self, execution_id: str) -> StoredExecution | None: ...

    async def list_for_user(
        self, user_id: str | None, limit: int, offset: int
    ) -> tuple[list[StoredExecution], int]:
        """The user's executions (everyone's for None), newest first, and how many in all."""
        ...

    async def claim_idempotency_key(self, user_id: str, key: str, execution_id: str) -> str | None:
        """Bind ``key`` to ``execution_id``; returns the execution already bound, if any."""
        ...

    async def idempotency_key_bound_at(self, user_id: str, key: str) -> datetime | None: ...

    async def release_idempotency_key(self, user_id: str, key: str) -> None: ...

    async def set_submission(self, execution_id: str, submission: Submission) -> None: ...

    async def to_outbox(self, execution_id: str, event: str, trace: StoredTraceContext) -> None:
        """Keep an unconfirmed request for re-publishing (idempotent)."""
        ...

    async def outbox_entries(self, limit: int) -> list[OutboxEntry]:
        """The oldest unconfirmed requests first."""
        ...

    async def confirmed(self, execution_id: str) -> None:
        """The broker acknowledged the request: out of the outbox, submission ``acked``."""
        ...

    async def mark_not_queued(self, execution_id: str, error: str) -> None:
        """The broker never took the request: a queued execution ends ``failed``
        (provisionally: should it run after all, its lifecycle wins)."""
        ...

    async def transition(
        self, execution_id: str, status: ExecutionStatus, at: datetime, **fields: object
    ) -> bool:
        """Apply a lifecycle status change and ``fields`` unless the execution is already past
        it; True when it was applied."""
        ...


class CoordinatorReadModel(Protocol):
    """What the coordinator publishes for the API to read: runtimes, queue, results."""

    async def runtimes(self) -> list[Runtime]: ...

    async def result(self, execution_id: str) -> ExecutionResult | None: ...

    async def queue_position(self, execution_id: str) -> int | None:
        """How many queued executions are ahead of this one (None once it left the queue)."""
        ...


class Publisher(Protocol):
    """Sends an event to its topic and waits for the broker: ``PublishUncertainError`` when
    the producer took it but no acknowledgement came in time, ``PublishError`` when it was
    not sent."""

    async def publish(self, event: EventEnvelope) -> object: ...


class StatusFeed(Protocol):
    """Status changes fanned out to every API instance's SSE streams."""

    async def publish(self, execution_id: str, change: StatusChange) -> None: ...

    def subscribe(
        self, execution_id: str
    ) -> AbstractAsyncContextManager[AsyncIterator[StatusChange | None]]:
        """Changes of one execution from now on; None when nothing came for a while (an idle
        tick, for a keep-alive and a re-read of the stored state)."""
        ...
