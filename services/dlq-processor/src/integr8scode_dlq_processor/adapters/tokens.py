"""Verifying the API's access tokens: JWT, HS256, signed with the secret the api uses.

The dlq-processor issues no tokens. A valid token is only who the caller was when it was
issued: ``routes/dependencies.py`` checks it against the account as it is now
(``adapters/mongo_accounts.py``), so a demoted, disabled or deleted admin, or one whose
tokens were revoked, loses access within the account cache's few seconds.
"""

from __future__ import annotations

import jwt

from integr8scode_dlq_processor.domain.errors import Unauthorized
from integr8scode_dlq_processor.domain.ports import Principal

ALGORITHM = "HS256"
_REQUIRED = ["sub", "role", "exp", "iat", "jti"]


class JwtVerifier:
    def __init__(self, secret: str, *, leeway_s: float = 5.0) -> None:
        self._secret = secret
        self._leeway = leeway_s  # clock skew tolerated between the api and this service

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
            raise Unauthorized("access token expired; log in again", invalid_token=True) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid access token", invalid_token=True) from None
        subject, role = claims.get("sub"), claims.get("role")
        generation = claims.get("gen", 0)  # issued before generations existed: 0
        if not isinstance(subject, str) or not subject or not isinstance(role, str):
            raise Unauthorized("invalid access token", invalid_token=True)
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise Unauthorized("invalid access token", invalid_token=True)
        return Principal(user_id=subject, role=role, token_generation=generation)
