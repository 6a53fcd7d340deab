"""Verifying the api's access tokens: JWT, HS256, signed with the secret the api issues them
with (PyJWT). The api is the only issuer; this side needs no lookup to verify.

Claims (written by services/api ``adapters/tokens.py``): ``sub`` (user id), ``role``, ``gen``
(the account's token generation at issue; absent on tokens from before generations existed:
0), ``iat``, ``exp``, ``jti``."""

from __future__ import annotations

import jwt

from integr8scode_auth.errors import TokenRejectedError
from integr8scode_auth.records import Principal

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "exp", "iat", "jti")
EXPIRED = "access token expired; log in again"
INVALID = "invalid access token"


class JwtVerifier:
    """``TokenVerifier`` for the api's tokens: signature, expiry and the required claims."""

    def __init__(self, secret: str, *, leeway_s: float = 5.0) -> None:
        self._secret = secret
        self._leeway = leeway_s  # clock skew tolerated between the api and this service

    def verify(self, token: str) -> Principal:
        """The token's principal; ``TokenRejectedError`` when it is expired, not signed with
        the secret, or lacks a claim or has one of the wrong type."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError(EXPIRED) from None
        except jwt.InvalidTokenError:
            raise TokenRejectedError(INVALID) from None
        subject, role = claims.get("sub"), claims.get("role")
        generation = claims.get("gen", 0)
        if not isinstance(subject, str) or not subject or not isinstance(role, str):
            raise TokenRejectedError(INVALID)
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise TokenRejectedError(INVALID)
        return Principal(user_id=subject, role=role, token_generation=generation)
