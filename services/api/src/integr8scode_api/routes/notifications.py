"""HTTP edge of the notification use cases (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from integr8scode_api.dependencies import CurrentUser
from integr8scode_api.domain.notifications import (
    NotificationPage,
    NotificationSettingsRequest,
    NotificationSettingsView,
)
from integr8scode_api.notification_service import NotificationService
from integr8scode_api.routes.pagination import Limit, Offset

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"},
    429: {"description": "Rate limited; see Retry-After"},
    503: {"description": "The database is unavailable; retry later"},
}


def build_notification_router(
    service: NotificationService, default_rate_limit: Callable[..., Any]
) -> APIRouter:
    """Routes for notification settings and deliveries; the rate limit is given."""
    router = APIRouter(
        prefix="/api/v1/notifications",
        tags=["notifications"],
        responses=_ERRORS,
        dependencies=[Depends(default_rate_limit)],
    )

    @router.get("/settings")
    async def get_settings(user: CurrentUser) -> NotificationSettingsView:
        """The caller's channels; the webhook secret shows as ``has_secret``, the Slack URL
        masked after its host."""
        return await service.get_settings(user)

    @router.put(
        "/settings",
        responses={422: {"description": "A URL or secret that is not acceptable"}},
    )
    async def put_settings(
        body: NotificationSettingsRequest, user: CurrentUser
    ) -> NotificationSettingsView:
        """Replace the caller's channels: ``{webhook?: {url, secret?}, slack?: {webhook_url}}``;
        a channel that is null or absent is removed. Every terminal execution is then delivered
        to each channel (signed when the webhook has a secret)."""
        return await service.put_settings(user, body)

    @router.get("")
    async def list_notifications(
        user: CurrentUser,
        limit: Limit = 20,
        offset: Offset = 0,
        execution_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    ) -> NotificationPage:
        """The caller's deliveries, newest first: status (``pending``, ``delivered``,
        ``failed``, ``refused``), channel, attempts, last status code, error."""
        return await service.list_deliveries(
            user, execution_id=execution_id, limit=limit, offset=offset
        )

    return router
