"""``JwtVerifier``: the api's tokens verify to their principal; anything else is rejected with
a message a person can act on, and never crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from integr8scode_auth import JwtVerifier, Principal, TokenRejectedError

from .fakes import SECRET, token


def test_a_token_of_the_api_verifies_to_its_principal() -> None:
    verifier = JwtVerifier(SECRET)
    assert verifier.verify(token(sub="u-7", role="user", gen=3)) == Principal("u-7", "user", 3)
    legacy = verifier.verify(token())  # issued before generations existed
    assert legacy == Principal("user-1", "admin", 0)
    assert legacy.admin


def test_an_expired_token_says_so() -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    with pytest.raises(TokenRejectedError, match="expired; log in again"):
        JwtVerifier(SECRET).verify(token(iat=past - timedelta(minutes=5), exp=past))


def test_the_leeway_tolerates_a_little_clock_skew() -> None:
    just_now = datetime.now(UTC) - timedelta(seconds=2)
    skewed = token(iat=just_now - timedelta(minutes=5), exp=just_now)
    assert JwtVerifier(SECRET, leeway_s=5.0).verify(skewed).user_id == "user-1"
    with pytest.raises(TokenRejectedError):
        JwtVerifier(SECRET, leeway_s=0.0).verify(skewed)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param(token(secret="another-secret-that-is-also-long-enough!!"), id="foreign key"),
        pytest.param(token(jti=None), id="no jti"),
        pytest.param(token(role=None), id="no role"),
        pytest.param(token(sub=""), id="empty subject"),
        pytest.param(token(role=7), id="role not a string"),
        pytest.param(token(gen="1"), id="gen a string"),
        pytest.param(token(gen=1.5), id="gen a float"),
        pytest.param(token(gen=True), id="gen a bool"),
    ],
)
def test_anything_else_is_an_invalid_token(bad: str) -> None:
    with pytest.raises(TokenRejectedError) as caught:
        JwtVerifier(SECRET).verify(bad)
    assert caught.value.detail == "invalid access token"


def test_only_hs256_is_accepted() -> None:
    claims: dict[str, Any] = {
        "sub": "user-1",
        "role": "admin",
        "iat": datetime.now(UTC),
        "exp": datetime.now(UTC) + timedelta(minutes=5),
        "jti": "x",
    }
    hs512 = jwt.encode(claims, SECRET, "HS512")
    unsigned = jwt.encode(claims, "", "none")
    for bad in (hs512, unsigned):
        with pytest.raises(TokenRejectedError, match="invalid access token"):
            JwtVerifier(SECRET).verify(bad)
