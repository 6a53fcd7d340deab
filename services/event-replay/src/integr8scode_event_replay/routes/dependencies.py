"""FastAPI dependencies: the service context and who the caller is (admins only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace

from integr8scode_event_replay.domain.errors import ForbiddenError, UnauthorizedError
from integr8scode_event_replay.domain.ports import (
    ADMIN_ROLE,
    AccountDirectory,
    Principal,
    TokenVerifier,
)
from integr8scode_event_replay.service import ReplayService

REVOKED = (
    "this token was revoked (the account's role or state changed, or it logged out "
    "everywhere); log in again"
)


@dataclass
class ReplayContext:
    """What the routes work with, built in ``app.py`` and kept on ``app.state.replay``."""

    service: ReplayService
    tokens: TokenVerifier
    accounts: AccountDirectory


def get_context(request: Request) -> ReplayContext:
    ctx = getattr(request.app.state, "replay", None)
    if not isinstance(ctx, ReplayContext):
        raise TypeError("app.state.replay is not a ReplayContext: build the app with build_app()")
    return ctx


Context = Annotated[ReplayContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="Access token from the api's POST /auth/login")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def require_admin(ctx: Context, credentials: BearerCredentials) -> Principal:
    """The caller, if the token verifies (401), its account still exists, is enabled and had
    no change since the token was issued (401, within the account cache's seconds), and it is
    an admin now (403). The account store down: 503 (fails closed)."""
    if credentials is None:
        raise UnauthorizedError("missing bearer token (Authorization: Bearer <access_token>)")
    principal = ctx.tokens.verify(credentials.credentials)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("user.id", principal.user_id)
    if not principal.admin:
        raise ForbiddenError("replay sessions need the admin role")
    account = await ctx.accounts.status(principal.user_id)
    if account is None:
        raise UnauthorizedError("the account of this token no longer exists", invalid_token=True)
    if account.disabled:
        raise UnauthorizedError("this account is disabled", invalid_token=True)
    if principal.token_generation < account.token_generation:
        raise UnauthorizedError(REVOKED, invalid_token=True)
    if account.role != ADMIN_ROLE:
        raise ForbiddenError("replay sessions need the admin role")
    return principal


Admin = Annotated[Principal, Depends(require_admin)]
