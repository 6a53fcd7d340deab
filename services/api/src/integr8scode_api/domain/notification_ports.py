"""What the notification routes need from the outside world, as Protocols the adapters
implement (and the unit tests fake). Every method raises ``DependencyUnavailableError`` when Mongo
is down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from integr8scode_api.domain.notifications import (
        NewSettings,
        NotificationView,
        StoredSettings,
    )


class NotificationSettingsStore(Protocol):
    """Users' channels (collection ``notification_settings``, written only by the API; the
    notifier reads it). Credentials go in as plaintext and are stored sealed; what comes back
    holds none."""

    async def get(self, user_id: str) -> StoredSettings | None: ...

    async def put(self, settings: NewSettings) -> None:
        """Replace the user's whole configuration (insert it when there is none)."""
        ...


class NotificationLog(Protocol):
    """Deliveries (collection ``notifications``, written by the notifier; read here)."""

    async def list_for_user(
        self, user_id: str, *, execution_id: str | None, limit: int, offset: int
    ) -> tuple[list[NotificationView], int]:
        """The user's deliveries, newest first, and how many there are in all."""
        ...
