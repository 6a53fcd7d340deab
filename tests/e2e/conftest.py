"""Fixtures for the end-to-end tests: they drive the running services through their APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.client import API, ApiUser, new_user
from tests.polling import eventually

ADMIN = ("admin", "admin-change-me")  # the local profile's bootstrap admin


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=API, timeout=30) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> ApiUser:
    return await new_user(http)


@pytest.fixture
async def admin(http: httpx.AsyncClient) -> dict[str, str]:
    """A bearer header of the api's bootstrap admin (the same token works on every admin API)."""

    async def login() -> dict[str, str] | None:
        response = await http.post(
            "/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        if response.status_code != 200:
            return None
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return await eventually(login, timeout_s=30, what="admin login")
