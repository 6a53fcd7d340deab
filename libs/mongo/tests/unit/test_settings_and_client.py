"""MongoSettings keeps its env names and defaults; the client factory's options."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integr8scode_mongo import MongoSettings, mongo_client


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONGO_URL", "MONGO_DATABASE", "MONGO_SERVER_SELECTION_TIMEOUT_MS"):
        monkeypatch.delenv(name, raising=False)
    settings = MongoSettings()
    assert settings.url == "mongodb://127.0.0.1:27017"
    assert settings.database == "integr8scode"
    assert settings.server_selection_timeout_ms == 5_000


def test_reads_the_mongo_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGO_URL", "mongodb://db.example:27018")
    monkeypatch.setenv("MONGO_DATABASE", "other")
    monkeypatch.setenv("MONGO_SERVER_SELECTION_TIMEOUT_MS", "750")
    settings = MongoSettings()
    assert (settings.url, settings.database) == ("mongodb://db.example:27018", "other")
    assert settings.server_selection_timeout_ms == 750


def test_a_timeout_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGO_SERVER_SELECTION_TIMEOUT_MS", "0")
    with pytest.raises(ValidationError, match="server_selection_timeout_ms"):
        MongoSettings()


async def test_the_client_is_lazy_tz_aware_and_times_out_as_configured() -> None:
    # Port 1 has no server: building the client must not try to reach it.
    client = mongo_client(
        MongoSettings(url="mongodb://127.0.0.1:1", server_selection_timeout_ms=1_234)
    )
    try:
        assert client.options.codec_options.tz_aware is True
        assert client.options.server_selection_timeout == 1.234  # seconds
        assert client.options.connect is False
    finally:
        await client.close()
