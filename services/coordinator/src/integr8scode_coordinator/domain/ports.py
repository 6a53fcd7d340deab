"""What the coordinator needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from integr8scode_coordinator.domain.saga import Saga, SagaStatus
from integr8scode_events import EventEnvelope, PublishedRecord


class SagaStore(Protocol):
    """Persisted saga state (collection ``sagas``, written only by the coordinator)."""

    async def create(self, saga: Saga) -> bool:
        """Insert a new saga; False when it already exists (a redelivered request)."""
        ...

    async def get(self, execution_id: str) -> Saga | None: ...

    async def oldest_queued(self, limit: int, exclude_users: Collection[str] = ()) -> list[Saga]:
        """Queued sagas, oldest first, leaving out those of ``exclude_users``."""
        ...

    async def claim_queued(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        """queued → reserved for ``owner``, atomically; False if someone else got it."""
        ...

    async def record_step(
        self, execution_id: str, step: str, status: SagaStatus, **fields: Any
    ) -> None: ...

    async def finish(
        self,
        execution_id: str,
        status: SagaStatus,
        event: dict[str, Any],
        *,
        only_from: SagaStatus | None = None,
        error: str | None = None,
    ) -> bool:
        """Move to a terminal status (from any active one, or only from ``only_from``) and store
        the terminal event in the outbox; False when the saga had already ended (exactly one
        terminal outcome per execution)."""
        ...

    async def mark_published(self, execution_id: str) -> None: ...

    async def unpublished_terminal(self, older_than: datetime) -> list[dict[str, Any]]: ...

    async def renew_leases(
        self, owner: str, execution_ids: Sequence[str], lease_until: datetime
    ) -> None: ...

    async def expired(self, now: datetime, limit: int) -> list[Saga]: ...

    async def take_over(self, execution_id: str, owner: str, lease_until: datetime) -> Saga | None:
        """Take an active saga whose lease ran out; None if its owner is alive or it moved on."""
        ...

    async def requeue(self, execution_id: str, owner: str) -> bool: ...

    async def request_cancel(self, execution_id: str) -> None: ...

    async def cancel_requested(self, owner: str, execution_ids: Sequence[str]) -> list[str]: ...


class Reservation(enum.Enum):
    RESERVED = "reserved"
    USER_LIMIT = "user_limit"  # this user already holds their share of slots
    FULL = "full"  # no free slot in the cluster


class SlotPool(Protocol):
    """Cluster-wide admission: a global pool of run slots, with a per-user cap."""

    async def reserve(
        self, execution_id: str, user_id: str, owner: str, lease_until: datetime, per_user: int
    ) -> Reservation: ...

    async def release(self, execution_id: str) -> None: ...

    async def renew(
        self, owner: str, execution_ids: Sequence[str], lease_until: datetime
    ) -> None: ...


class ResultStore(Protocol):
    """Full (capped) output and measurements (collection ``execution_results``)."""

    async def save(self, execution_id: str, document: dict[str, Any]) -> None: ...


class Publisher(Protocol):
    async def publish(self, event: EventEnvelope) -> PublishedRecord: ...
