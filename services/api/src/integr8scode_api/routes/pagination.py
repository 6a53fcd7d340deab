"""The page parameters every list route takes, with bounds that answer 422, never a 500.

An offset past what a 64-bit BSON integer holds used to reach the driver and fail there
(OverflowError → 500); a million rows deep is already further than any page a client walks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_LIMIT = 100
MAX_OFFSET = 1_000_000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip (newest first)")]
