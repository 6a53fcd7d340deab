"""FastAPI dependencies: the service context and who the caller is (admins only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from integr8scode_auth import AccountDirectory, Principal, TokenVerifier, authorize_admin
from integr8scode_event_replay.domain.errors import UnauthorizedError
from integr8scode_event_replay.service import ReplayService
from integr8scode_telemetry import attributes, set_span_attributes


@dataclass
class ReplayContext:
    """What the routes work with, built in ``app.py`` and kept on ``app.state.replay``."""

    service: ReplayService
    tokens: TokenVerifier
    accounts: AccountDirectory


async def get_context(request: Request) -> ReplayContext:
    """The service's context from ``app.state``. ``async`` although it awaits nothing: FastAPI
    runs a plain ``def`` dependency in its thread pool, a thread hop per request."""
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
    an admin now (403). The account store down: 503 (fails closed). The checks are
    ``integr8scode_auth``'s; ``errors.py`` turns its errors into these answers."""
    if credentials is None:
        raise UnauthorizedError("missing bearer token (Authorization: Bearer <access_token>)")
    principal = ctx.tokens.verify(credentials.credentials)
    set_span_attributes({attributes.USER_ID: principal.user_id})
    return await authorize_admin(principal, ctx.accounts)


Admin = Annotated[Principal, Depends(require_admin)]
