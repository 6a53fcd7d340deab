"""The readiness check against the real Mongo-wire server, and against none."""

from __future__ import annotations

import pytest
from pymongo.errors import ServerSelectionTimeoutError
from tests.stack import local_stack

from integr8scode_mongo import MongoSettings, mongo_client, mongo_ping


async def test_ping_answers_true_when_the_server_is_up() -> None:
    client = mongo_client(MongoSettings(url=local_stack().mongo_url))
    try:
        assert await mongo_ping(client)() is True
    finally:
        await client.close()


async def test_ping_raises_when_no_server_answers() -> None:
    client = mongo_client(
        MongoSettings(url="mongodb://127.0.0.1:1", server_selection_timeout_ms=200)
    )
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            await mongo_ping(client)()
    finally:
        await client.close()
