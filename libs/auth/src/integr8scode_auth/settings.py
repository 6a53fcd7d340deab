"""The one setting of the admin check: how long an account is cached. Each service declares it
under its own name (``DLQ_ACCOUNT_CACHE_S``, ``REPLAY_ACCOUNT_CACHE_S``) with this type, so the
bound and its meaning are stated once."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ACCOUNT_CACHE_S = 2.0
AccountCacheSeconds = Annotated[
    float,
    Field(
        ge=0,
        le=30,
        description="How long an account's role/state is cached: the longest a demoted, "
        "disabled or deleted admin keeps access (0: read it at every request).",
    ),
]
