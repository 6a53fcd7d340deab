"""What notification settings are accepted: URLs, secrets, and https for Slack."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integr8scode_api.domain.errors import ValidationFailedError
from integr8scode_api.domain.notifications import (
    NewSettings,
    NotificationPolicy,
    NotificationSettingsRequest,
    NotificationSettingsView,
    StoredSettings,
    check_url,
    mask_webhook_url,
    validate_settings,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks/1",
        "http://example.com",
        "https://example.com:8443/a/b?c=d&e=f",
        "HTTPS://EXAMPLE.COM/x",
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
        "https://bücher.example/hook",
    ],
)
def test_acceptable_urls(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "must be an http:// or https:// URL"),
        ("file:///etc/passwd", "must be an http:// or https:// URL"),
        ("javascript:alert(1)", "must be an http:// or https:// URL"),
        ("example.com/hook", "must be an http:// or https:// URL"),
        ("https://user:pw@example.com/", "must not contain user information"),
        ("https://token@example.com/", "must not contain user information"),
        ("https:///path-only", "must name a host"),
        ("https://exa mple.com/", "must not contain spaces"),
        ("https://example.com/\nHost: evil", "must not contain spaces or control characters"),
        ("https://example.com:99999/", "has an invalid port"),
        ("https://example.com:port/", "has an invalid port"),
        ("https://example.com/#frag", "must not contain a fragment"),
        ("https://exa_mple!.com/", "has an invalid host name"),
    ],
)
def test_unacceptable_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as failure:  # noqa: PT011 - the reason is checked below
        check_url(url)
    assert reason in str(failure.value)


def test_a_url_over_2048_characters_is_refused() -> None:
    url = "https://example.com/" + "a" * 2030
    with pytest.raises(ValidationError, match="at most 2048 characters"):
        NotificationSettingsRequest.model_validate({"webhook": {"url": url}})
    NotificationSettingsRequest.model_validate({"webhook": {"url": url[:2048]}})


@pytest.mark.parametrize(("length", "ok"), [(15, False), (16, True), (256, True), (257, False)])
def test_secrets_are_16_to_256_characters(length: int, ok: bool) -> None:
    body = {"webhook": {"url": "https://example.com/", "secret": "s" * length}}
    if ok:
        NotificationSettingsRequest.model_validate(body)
    else:
        with pytest.raises(ValidationError):
            NotificationSettingsRequest.model_validate(body)


def test_slack_needs_https_unless_allowed() -> None:
    request = NotificationSettingsRequest.model_validate(
        {"slack": {"webhook_url": "http://127.0.0.1:9/services/T/B/X"}}
    )
    with pytest.raises(ValidationFailedError, match=r"slack\.webhook_url: must be an https:// URL"):
        validate_settings(request, NotificationPolicy(allow_http_slack=False))
    validate_settings(request, NotificationPolicy(allow_http_slack=True))
    secure = NotificationSettingsRequest.model_validate(
        {"slack": {"webhook_url": "https://hooks.slack.com/services/T/B/X"}}
    )
    validate_settings(secure, NotificationPolicy(allow_http_slack=False))


def test_the_view_masks_every_secret() -> None:
    stored = StoredSettings.of(
        NewSettings(
            user_id="u",
            webhook_url="https://example.com/hook",
            webhook_secret="very-secret-value-123",
            slack_webhook_url="https://hooks.slack.com/services/T1/B2/TOKEN",
            updated_at=None,
        )
    )
    view = NotificationSettingsView.of(stored).model_dump_json()
    assert "very-secret-value-123" not in view
    assert "TOKEN" not in view
    assert NotificationSettingsView.of(stored).model_dump(exclude={"updated_at"}) == {
        "webhook": {"url": "https://example.com/hook", "has_secret": True},
        "slack": {"target": "https://hooks.slack.com/***"},
    }
    assert NotificationSettingsView.of(None).model_dump() == {
        "webhook": None,
        "slack": None,
        "updated_at": None,
    }


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://example.com:8443/a/b?token=T&x=1", "https://example.com:8443/a/b?***"),
        ("http://example.com?", "http://example.com?***"),
    ],
)
def test_a_webhook_url_is_shown_without_its_query(url: str, shown: str) -> None:
    assert mask_webhook_url(url) == shown
