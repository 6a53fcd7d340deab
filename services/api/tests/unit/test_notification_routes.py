"""``/api/v1/notifications``: settings (validated, secrets masked) and the caller's deliveries,
through the HTTP edge with fake stores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from integr8scode_api.dependencies import rate_limited
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.notifications import (
    NewSettings,
    NotificationPolicy,
    NotificationView,
    StoredSettings,
)
from integr8scode_api.notification_service import NotificationService
from integr8scode_api.routes.notifications import build_notification_router

if TYPE_CHECKING:
    from conftest import Harness

SETTINGS = "/api/v1/notifications/settings"
LIST = "/api/v1/notifications"
SECRET = "whsec-0123456789abcdef"
SLACK_URL = "https://hooks.slack.com/services/T1/B2/SLACKTOKEN"


@dataclass
class FakeSettingsStore:
    """Keeps what a PUT gave (plaintext); answers what the real store answers: no credential."""

    stored: dict[str, NewSettings] = field(default_factory=dict)
    down: bool = False

    async def get(self, user_id: str) -> StoredSettings | None:
        if self.down:
            raise DependencyUnavailableError(
                "notification settings unavailable", dependency="mongo"
            )
        new = self.stored.get(user_id)
        return None if new is None else StoredSettings.of(new)

    async def put(self, settings: NewSettings) -> None:
        if self.down:
            raise DependencyUnavailableError(
                "notification settings unavailable", dependency="mongo"
            )
        self.stored[settings.user_id] = settings


@dataclass
class FakeLog:
    records: dict[str, list[NotificationView]] = field(default_factory=dict)

    async def list_for_user(
        self, user_id: str, *, execution_id: str | None, limit: int, offset: int
    ) -> tuple[list[NotificationView], int]:
        mine = [
            r
            for r in self.records.get(user_id, [])
            if execution_id is None or r.execution_id == execution_id
        ]
        mine.sort(key=lambda r: r.created_at, reverse=True)
        return mine[offset : offset + limit], len(mine)


@dataclass
class Notifications:
    harness: Harness
    store: FakeSettingsStore
    log: FakeLog


@pytest.fixture
def notifications(harness: Harness) -> Notifications:
    store, log = FakeSettingsStore(), FakeLog()
    service = NotificationService(
        settings=store, log=log, policy=NotificationPolicy(allow_http_slack=False)
    )
    harness.app.include_router(build_notification_router(service, rate_limited()))
    return Notifications(harness, store, log)


def _record(execution_id: str, channel: str, minutes_ago: int) -> NotificationView:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return NotificationView(
        notification_id=str(uuid.uuid4()),
        execution_id=execution_id,
        event_type="execution.completed",
        channel=channel,
        target="https://example.com/hook",
        status="delivered",
        attempts=1,
        last_status_code=200,
        created_at=at,
        updated_at=at,
        delivered_at=at,
        trace_id="ab" * 16,
    )


def test_every_route_needs_a_token(notifications: Notifications) -> None:
    client = notifications.harness.client
    assert client.get(SETTINGS).status_code == 401
    assert client.put(SETTINGS, json={}).status_code == 401
    assert client.get(LIST).status_code == 401


def test_settings_start_empty(notifications: Notifications) -> None:
    h = notifications.harness
    response = h.client.get(SETTINGS, headers=h.bearer(h.add_user()))
    assert response.status_code == 200
    assert response.json() == {"webhook": None, "slack": None, "updated_at": None}


def test_put_stores_the_settings_and_answers_without_secrets(
    notifications: Notifications,
) -> None:
    h = notifications.harness
    user = h.add_user()
    body = {
        "webhook": {"url": "https://example.com/hook", "secret": SECRET},
        "slack": {"webhook_url": SLACK_URL},
    }
    response = h.client.put(SETTINGS, json=body, headers=h.bearer(user))
    assert response.status_code == 200
    assert SECRET not in response.text
    assert "SLACKTOKEN" not in response.text
    answer = response.json()
    assert answer["webhook"] == {"url": "https://example.com/hook", "has_secret": True}
    assert answer["slack"] == {"target": "https://hooks.slack.com/***"}
    assert answer["updated_at"]
    stored = notifications.store.stored[user.id]
    assert (stored.webhook_secret, stored.slack_webhook_url) == (SECRET, SLACK_URL)
    again = h.client.get(SETTINGS, headers=h.bearer(user))
    assert again.json() == answer
    assert "X-RateLimit-Limit" in again.headers  # the default rule counts these routes


def test_an_absent_or_null_channel_is_removed(notifications: Notifications) -> None:
    h = notifications.harness
    user = h.add_user()
    headers = h.bearer(user)
    h.client.put(
        SETTINGS,
        json={"webhook": {"url": "https://example.com/hook"}, "slack": {"webhook_url": SLACK_URL}},
        headers=headers,
    )
    response = h.client.put(SETTINGS, json={"slack": None}, headers=headers)
    assert response.json()["webhook"] is None
    assert response.json()["slack"] is None
    stored = notifications.store.stored[user.id]
    assert stored.webhook_url is None
    assert stored.slack_webhook_url is None
    without_secret = h.client.put(
        SETTINGS, json={"webhook": {"url": "http://example.com/x"}}, headers=headers
    )
    assert without_secret.json()["webhook"] == {"url": "http://example.com/x", "has_secret": False}


def test_a_webhook_query_is_stored_but_never_answered(notifications: Notifications) -> None:
    h = notifications.harness
    user = h.add_user()
    url = "https://example.com/in/hook?token=QUERYTOKEN&x=1"
    put = h.client.put(SETTINGS, json={"webhook": {"url": url}}, headers=h.bearer(user))
    assert put.status_code == 200
    assert "QUERYTOKEN" not in put.text
    assert put.json()["webhook"]["url"] == "https://example.com/in/hook?***"
    assert h.client.get(SETTINGS, headers=h.bearer(user)).json() == put.json()
    assert notifications.store.stored[user.id].webhook_url == url  # the store gets it whole


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"webhook": {"url": "ftp://example.com/"}}, "webhook.url: must be an http:// or https://"),
        (
            {"webhook": {"url": "https://u:p@example.com/"}},
            "webhook.url: must not contain user information",
        ),
        ({"webhook": {"url": "https://example.com/", "secret": "short"}}, "webhook.secret"),
        ({"webhook": {"url": "https://example.com/" + "x" * 2100}}, "at most 2048 characters"),
        ({"webhook": {"secret": SECRET}}, "webhook.url: Field required"),
        ({"slack": {"webhook_url": "http://hooks.example/services/x"}}, "must be an https:// URL"),
        ({"slack": {"url": SLACK_URL}}, "slack.url: Extra inputs are not permitted"),
        ({"email": {"to": "a@b.c"}}, "email: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_422_with_a_clear_message(
    notifications: Notifications, body: dict[str, object], message: str
) -> None:
    h = notifications.harness
    user = h.add_user()
    response = h.client.put(SETTINGS, json=body, headers=h.bearer(user))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("invalid request: ")
    assert message in detail
    assert SECRET not in response.text
    assert user.id not in notifications.store.stored


def test_a_malformed_body_is_400(notifications: Notifications) -> None:
    h = notifications.harness
    response = h.client.put(
        SETTINGS,
        content=b"{not json",
        headers={**h.bearer(h.add_user()), "Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_a_down_store_is_503(notifications: Notifications) -> None:
    h = notifications.harness
    notifications.store.down = True
    response = h.client.get(SETTINGS, headers=h.bearer(h.add_user()))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_deliveries_are_the_callers_own_newest_first_and_paginated(
    notifications: Notifications,
) -> None:
    h = notifications.harness
    alice, bob = h.add_user(), h.add_user()
    notifications.log.records[alice.id] = [
        _record("exec-a", "webhook", 30),
        _record("exec-a", "slack", 20),
        _record("exec-b", "webhook", 10),
    ]
    notifications.log.records[bob.id] = [_record("exec-bob", "webhook", 1)]

    page = h.client.get(LIST, headers=h.bearer(alice)).json()
    assert page["total"] == 3
    assert [(i["execution_id"], i["channel"]) for i in page["items"]] == [
        ("exec-b", "webhook"),
        ("exec-a", "slack"),
        ("exec-a", "webhook"),
    ]
    first = page["items"][0]
    assert set(first) >= {
        "notification_id",
        "status",
        "channel",
        "attempts",
        "last_status_code",
        "error",
        "created_at",
        "updated_at",
        "delivered_at",
    }

    second = h.client.get(LIST, params={"limit": 2, "offset": 2}, headers=h.bearer(alice)).json()
    assert (second["limit"], second["offset"], second["total"]) == (2, 2, 3)
    assert [i["execution_id"] for i in second["items"]] == ["exec-a"]

    only_a = h.client.get(LIST, params={"execution_id": "exec-a"}, headers=h.bearer(alice))
    assert only_a.json()["total"] == 2
    assert {i["execution_id"] for i in only_a.json()["items"]} == {"exec-a"}

    bobs = h.client.get(LIST, headers=h.bearer(bob)).json()
    assert [i["execution_id"] for i in bobs["items"]] == ["exec-bob"]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"execution_id": ""}]
)
def test_invalid_listing_filters_are_422(
    notifications: Notifications, params: dict[str, object]
) -> None:
    h = notifications.harness
    response = h.client.get(LIST, params=params, headers=h.bearer(h.add_user()))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: ")
