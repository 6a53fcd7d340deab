"""Fixtures for the end-to-end tests: they drive the running services through their APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.client import API, ApiUser, new_user


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=API, timeout=30) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> ApiUser:
    return await new_user(http)
