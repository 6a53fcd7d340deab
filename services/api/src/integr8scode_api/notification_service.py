"""The notification use cases: read and replace a user's channels, list their deliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from integr8scode_api.domain.notification_ports import NotificationLog, NotificationSettingsStore
from integr8scode_api.domain.notifications import (
    NewSettings,
    NotificationPage,
    NotificationPolicy,
    NotificationSettingsRequest,
    NotificationSettingsView,
    StoredSettings,
    validate_settings,
)
from integr8scode_api.domain.users import User


def _now() -> datetime:
    # Milliseconds: what BSON keeps, so the answer to a PUT equals what a GET reads back.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class NotificationService:
    def __init__(
        self,
        *,
        settings: NotificationSettingsStore,
        log: NotificationLog,
        policy: NotificationPolicy,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._settings = settings
        self._log = log
        self._policy = policy
        self._clock = clock

    async def get_settings(self, user: User) -> NotificationSettingsView:
        return NotificationSettingsView.of(await self._settings.get(user.id))

    async def put_settings(
        self, user: User, request: NotificationSettingsRequest
    ) -> NotificationSettingsView:
        """Replace the user's channels; the answer masks what is secret."""
        validate_settings(request, self._policy)
        new = NewSettings(
            user_id=user.id,
            webhook_url=request.webhook.url if request.webhook else None,
            webhook_secret=request.webhook.secret if request.webhook else None,
            slack_webhook_url=request.slack.webhook_url if request.slack else None,
            updated_at=self._clock(),
        )
        await self._settings.put(new)
        return NotificationSettingsView.of(StoredSettings.of(new))

    async def list_deliveries(
        self, user: User, *, execution_id: str | None, limit: int, offset: int
    ) -> NotificationPage:
        """The caller's own deliveries, newest first."""
        items, total = await self._log.list_for_user(
            user.id, execution_id=execution_id, limit=limit, offset=offset
        )
        return NotificationPage(items=items, limit=limit, offset=offset, total=total)
