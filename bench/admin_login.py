"""The admin's bearer header for the benches (BENCH_ADMIN_USER / BENCH_ADMIN_PASSWORD)."""

from __future__ import annotations

import os

import httpx


async def admin_headers(http: httpx.AsyncClient, api: str) -> dict[str, str]:
    login = await http.post(
        f"{api}/api/v1/auth/login",
        json={
            "username": os.environ.get("BENCH_ADMIN_USER", "admin"),
            "password": os.environ.get("BENCH_ADMIN_PASSWORD", "admin-change-me"),
        },
    )
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}
