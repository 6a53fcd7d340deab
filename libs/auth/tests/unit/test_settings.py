"""``AccountCacheSeconds``: the bound on how long a revoked admin keeps access, as a service
declares it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from integr8scode_auth import ACCOUNT_CACHE_S, AccountCacheSeconds


class _Settings(BaseModel):
    account_cache_s: AccountCacheSeconds = ACCOUNT_CACHE_S


def test_two_seconds_by_default_zero_to_thirty_allowed() -> None:
    assert _Settings().account_cache_s == 2.0
    assert _Settings(account_cache_s=0).account_cache_s == 0
    assert _Settings(account_cache_s=30).account_cache_s == 30


@pytest.mark.parametrize("bad", [-0.1, 30.5])
def test_out_of_bounds_is_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="account_cache_s"):
        _Settings(account_cache_s=bad)
