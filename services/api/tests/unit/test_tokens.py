"""Access tokens: claims, expiry, tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from integr8scode_api.adapters.tokens import JwtTokenIssuer
from integr8scode_api.domain.errors import UnauthorizedError
from integr8scode_api.domain.users import Role, User

SECRET = "a-secret-of-at-least-thirty-two-characters"


def _user(role: Role = Role.ADMIN) -> User:
    return User.new("alice", "hash", role)


def test_issued_token_carries_the_contract_claims() -> None:
    user = _user()
    issued = JwtTokenIssuer(SECRET, ttl_s=600).issue(user)
    claims = jwt.decode(issued.access_token, SECRET, algorithms=["HS256"])
    assert issued.expires_in == 600
    assert claims["sub"] == user.id
    assert claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 600
    assert len(claims["jti"]) == 32


def test_verify_returns_the_principal() -> None:
    issuer = JwtTokenIssuer(SECRET, ttl_s=600)
    user = _user()
    principal = issuer.verify(issuer.issue(user).access_token)
    assert principal.user_id == user.id
    assert principal.role is Role.ADMIN


def test_every_token_is_unique() -> None:
    issuer = JwtTokenIssuer(SECRET, ttl_s=600)
    user = _user()
    assert issuer.issue(user).access_token != issuer.issue(user).access_token


def test_expired_token_is_refused_with_its_own_message() -> None:
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    old = JwtTokenIssuer(SECRET, ttl_s=3600, clock=lambda: two_hours_ago).issue(_user())
    with pytest.raises(UnauthorizedError, match="expired") as caught:
        JwtTokenIssuer(SECRET, ttl_s=3600).verify(old.access_token)
    assert caught.value.invalid_token


def test_leeway_tolerates_small_clock_skew() -> None:
    just_expired = datetime.now(UTC) - timedelta(seconds=62)
    token = JwtTokenIssuer(SECRET, ttl_s=60, clock=lambda: just_expired).issue(_user())
    JwtTokenIssuer(SECRET, ttl_s=60, leeway_s=5).verify(token.access_token)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode({"sub": "u", "role": "admin"}, SECRET, algorithm="HS256"),  # no exp/iat/jti
        jwt.encode(
            {"sub": "u", "role": "admin", "exp": 9_999_999_999, "iat": 0, "jti": "j"},
            "another-secret-of-at-least-thirty-two-chars",
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "u", "role": "root", "exp": 9_999_999_999, "iat": 0, "jti": "j"},
            SECRET,
            algorithm="HS256",
        ),
        jwt.encode(
            {"sub": "u", "role": "admin", "exp": 9_999_999_999, "iat": 0, "jti": "j"},
            "",  # no key: typed str, since cryptography (installed) narrows the key's type
            algorithm="none",
        ),
    ],
    ids=["garbage", "missing-claims", "wrong-secret", "unknown-role", "alg-none"],
)
def test_invalid_tokens_are_refused(token: str) -> None:
    with pytest.raises(UnauthorizedError, match="invalid access token"):
        JwtTokenIssuer(SECRET, ttl_s=60).verify(token)


def test_a_tampered_payload_breaks_the_signature() -> None:
    issuer = JwtTokenIssuer(SECRET, ttl_s=60)
    header, _, signature = issuer.issue(_user(Role.USER)).access_token.split(".")
    forged_payload = jwt.encode(
        {"sub": "x", "role": "admin", "exp": 9_999_999_999, "iat": 0, "jti": "j"},
        "whatever-secret-of-at-least-thirty-two-chars",
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(UnauthorizedError):
        issuer.verify(f"{header}.{forged_payload}.{signature}")
