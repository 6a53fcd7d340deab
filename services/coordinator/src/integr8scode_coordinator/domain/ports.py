"""What the coordinator needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from integr8scode_coordinator.domain.saga import Saga, SagaStatus
from integr8scode_events import EventEnvelope, PublishedRecord


class SagaStore(Protocol):
    """Persisted saga state, written only by the coordinator: ``sagas`` (one document per
    execution) plus the small collections that carry the cluster-wide guarantees —
    ``saga_queue``, ``saga_claims`` and ``saga_outbox`` (see ``adapters/mongo_sagas.py``)."""

    async def create(self, saga: Saga) -> bool:
        """Insert a new saga; False when it already exists (a redelivered request)."""
        ...

    async def get(self, execution_id: str) -> Saga | None: ...

    async def oldest_queued(self, limit: int, exclude_users: Collection[str] = ()) -> list[Saga]:
        """Queued sagas, oldest first, leaving out those of ``exclude_users``."""
        ...

    async def claim_queued(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        """queued → reserved for ``owner``; False if someone else got it (or it was cancelled)."""
        ...

    async def record_step(
        self,
        execution_id: str,
        step: str,
        status: SagaStatus,
        *,
        exclusive_until: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Record a step of a saga that has not ended. Before ``exclusive_until`` the caller
        holds the saga exclusively (its claim, a live lease), so nobody else can have ended it."""
        ...

    async def finish(
        self,
        execution_id: str,
        status: SagaStatus,
        event: dict[str, Any],
        *,
        only_from: SagaStatus | None = None,
        error: str | None = None,
        steps: Sequence[str] = (),
        exclusive_until: datetime | None = None,
    ) -> bool:
        """Move to a terminal status (from any active one, or only from ``only_from``) and store
        the terminal event in the outbox; False when the saga had already ended (exactly one
        terminal outcome per execution). ``steps`` done since the last recorded one are
        recorded with it, in the same write; ``exclusive_until`` as in ``record_step``."""
        ...

    async def mark_published(self, execution_id: str) -> None:
        """The terminal event went out: drop it from the outbox."""
        ...

    async def unpublished_terminal(self, older_than: datetime) -> list[dict[str, Any]]:
        """Terminal events stored before ``older_than`` and still not published."""
        ...

    async def take_over(self, execution_id: str, expired_lease: datetime) -> bool:
        """Win the recovery of an execution whose slot lease ran out at ``expired_lease``: True
        for exactly one caller cluster-wide per (execution, expired lease)."""
        ...

    async def requeue(self, execution_id: str, owner: str) -> bool:
        """Give back a claim ``owner`` holds on a saga that has not started running: it is
        queued again with its original ``enqueued_at``; False if ``owner`` holds no such claim."""
        ...

    async def request_cancel(self, execution_id: str) -> None: ...

    async def cancel_requested(self, owner: str, execution_ids: Sequence[str]) -> list[str]: ...


@dataclass(frozen=True)
class HeldSlot:
    """A run slot as held by ``owner`` for one execution, until ``lease_until``."""

    slot_id: str
    execution_id: str
    user_id: str
    owner: str
    lease_until: datetime


@dataclass(frozen=True)
class HeldSlots:
    """One read of the held slots: their ids, and the live (unexpired) ones per user."""

    taken: frozenset[str]
    live_by_user: dict[str, int]


class Reservation(enum.Enum):
    RESERVED = "reserved"
    USER_LIMIT = "user_limit"  # this user already holds their share of slots
    FULL = "full"  # no free slot in the cluster


class SlotPool(Protocol):
    """Cluster-wide admission: a global pool of run slots, with a per-user cap."""

    async def reserve(
        self,
        execution_id: str,
        user_id: str,
        owner: str,
        lease_until: datetime,
        per_user: int,
        *,
        seen: HeldSlots | None = None,
    ) -> Reservation:
        """Take a free slot unless the cluster is full or the user at ``per_user``; ``seen``, a
        read of the slots made just before, spares reading them again (the slot's unique id
        still decides, so a stale read costs a lost insert, never a slot over the limit)."""
        ...

    async def release(self, execution_id: str, owner: str) -> None:
        """Free the slot ``owner`` holds for ``execution_id`` (idempotent)."""
        ...

    async def held_slots(self) -> HeldSlots:
        """The slots held cluster-wide: admission's fair-share order, and what ``reserve``
        may start from."""
        ...

    async def renew(
        self, owner: str, execution_ids: Sequence[str], lease_until: datetime
    ) -> None: ...

    async def expired(self, now: datetime, limit: int) -> list[HeldSlot]:
        """Held slots whose lease ran out: their holder stopped heartbeating."""
        ...

    async def prolong(self, slot: HeldSlot, lease_until: datetime) -> bool:
        """Extend an expired slot's lease for its recovery (after ``SagaStore.take_over``), so a
        recoverer that dies too leaves a slot that expires again; False if it changed since."""
        ...


class ResultStore(Protocol):
    """Full (capped) output and measurements (collection ``execution_results``)."""

    async def save(self, execution_id: str, document: dict[str, Any]) -> None: ...


class Publisher(Protocol):
    async def publish(self, event: EventEnvelope) -> PublishedRecord: ...
