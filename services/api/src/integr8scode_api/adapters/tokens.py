"""Access tokens: JWT signed with HS256 and the service's secret (PyJWT)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt

from integr8scode_api.domain.errors import UnauthorizedError
from integr8scode_api.domain.ports import IssuedToken
from integr8scode_api.domain.users import Principal, Role, User

ALGORITHM = "HS256"
_REQUIRED = ["sub", "role", "exp", "iat", "jti"]


class JwtTokenIssuer:
    """Issues and verifies tokens with claims ``sub`` (user id), ``role``, ``gen`` (the
    account's token generation when issued: a token whose ``gen`` is below the account's is
    revoked), ``iat``, ``exp`` and ``jti``. Every service that shares the secret can check the
    signature without a lookup; whether the token is still honoured takes the account's
    current state (``dependencies.current_user``; the dlq-processor and event-replay read it
    too)."""

    def __init__(
        self,
        secret: str,
        ttl_s: int,
        *,
        leeway_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)
        self._leeway = leeway_s  # clock skew tolerated between the services that verify
        self._clock = clock

    def issue(self, user: User) -> IssuedToken:
        now = self._clock()
        claims = {
            "sub": user.id,
            "role": user.role.value,
            "gen": user.token_generation,
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(access_token=token, expires_in=int(self._ttl.total_seconds()))

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError(
                "access token expired; log in again", invalid_token=True
            ) from None
        except jwt.InvalidTokenError:
            raise UnauthorizedError("invalid access token", invalid_token=True) from None
        generation = claims.get("gen", 0)  # tokens issued before generations existed: 0
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise UnauthorizedError("invalid access token", invalid_token=True)
        try:
            return Principal(
                user_id=str(claims["sub"]), role=Role(claims["role"]), token_generation=generation
            )
        except ValueError:
            raise UnauthorizedError("invalid access token", invalid_token=True) from None
