"""FastAPI dependencies: the service context, and who the caller is (admins only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from integr8scode_auth import AccountDirectory, Principal, TokenVerifier, authorize_admin
from integr8scode_dlq_processor.domain.dead_letters import DeadLetterService
from integr8scode_dlq_processor.domain.errors import UnauthorizedError
from integr8scode_telemetry import attributes, set_span_attributes


@dataclass
class DlqContext:
    """What the routes work with, built once in ``app.py`` and kept on ``app.state.dlq``."""

    service: DeadLetterService
    tokens: TokenVerifier
    accounts: AccountDirectory
    wake_scheduler: Callable[[], None] = lambda: None


async def get_context(request: Request) -> DlqContext:
    """The service's context from ``app.state``. ``async`` although it awaits nothing: FastAPI
    runs a plain ``def`` dependency in its thread pool, a thread hop per request."""
    ctx = getattr(request.app.state, "dlq", None)
    if not isinstance(ctx, DlqContext):
        raise TypeError("app.state.dlq is not a DlqContext: build the app with build_app()")
    return ctx


Context = Annotated[DlqContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="Access token from the api's POST /auth/login")


async def require_admin(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller if the token verifies (401), its account still exists, is enabled and had
    no change since the token was issued (401, within the account cache's seconds), and it is
    an admin now (403). The account store down: 503 (fails closed). The checks are
    ``integr8scode_auth``'s; ``errors.py`` turns its errors into these answers."""
    if credentials is None:
        raise UnauthorizedError("missing bearer token (Authorization: Bearer <access_token>)")
    principal = ctx.tokens.verify(credentials.credentials)
    set_span_attributes({attributes.USER_ID: principal.user_id})
    return await authorize_admin(principal, ctx.accounts)


Admin = Annotated[Principal, Depends(require_admin)]
