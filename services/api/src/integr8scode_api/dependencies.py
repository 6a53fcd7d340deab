"""FastAPI dependencies: who the caller is, whether they may, and whether they're over a rate
limit. Routes declare these; they never read tokens or count requests themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from integr8scode_api.domain.accounts import AccountAdmin
from integr8scode_api.domain.auth import AuthService
from integr8scode_api.domain.errors import ForbiddenError, UnauthorizedError
from integr8scode_api.domain.ports import TokenIssuer, UserRepository
from integr8scode_api.domain.rate_limit import (
    RateLimitCheck,
    RateLimitedError,
    RateLimitGate,
    RateLimitRuleStore,
)
from integr8scode_api.domain.users import Principal, Role, User
from integr8scode_api.middleware import STATE_KEY
from integr8scode_telemetry import attributes, set_span_attributes, start_span

REVOKED = (
    "this token was revoked (the account's role or state changed, or it logged out "
    "everywhere); log in again"
)

# Not (yet) in the shared trace contract: set when the limiter could not be asked.
RATE_LIMIT_DEGRADED = "rate_limit.degraded"
RATE_LIMIT_SUBJECT_SCOPE = "rate_limit.scope"


@dataclass
class ApiContext:
    """What the routes work with, built once in ``app.py`` and kept on ``app.state.api``."""

    auth: AuthService
    users: UserRepository
    tokens: TokenIssuer
    rate_limits: RateLimitGate
    rules: RateLimitRuleStore
    accounts: AccountAdmin
    tracer: Tracer | None = None


async def get_context(request: Request) -> ApiContext:
    """The service's context from ``app.state``. ``async`` although it awaits nothing: FastAPI
    runs a plain ``def`` dependency in its thread pool, a thread hop per request."""
    ctx = getattr(request.app.state, "api", None)
    if not isinstance(ctx, ApiContext):
        raise TypeError("app.state.api is not an ApiContext: build the app with build_app()")
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]

_bearer = HTTPBearer(
    auto_error=False,
    description="Access token from POST /api/v1/auth/login",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def client_address(request: Request) -> str:
    """The peer address (uvicorn resolves ``X-Forwarded-For`` only from trusted proxies,
    ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


def request_path(request: Request) -> str:
    """The path the router matched (decoded, without the ``root_path`` the app is served
    under): what rule patterns are matched against."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def optional_principal(request: Request, ctx: Context) -> Principal | None:
    """The caller if a valid token came along, else None (never refuses the request). Reads the
    header itself rather than through ``HTTPBearer``, so routes open to anyone (login) don't
    show as needing a token in the OpenAPI document."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return ctx.tokens.verify(token.strip())
    except UnauthorizedError:
        return None


async def current_principal(ctx: Context, credentials: BearerCredentials) -> Principal:
    """The caller as the token says, without a lookup; 401 when missing or invalid."""
    if credentials is None:
        raise UnauthorizedError("missing bearer token (Authorization: Bearer <access_token>)")
    principal = ctx.tokens.verify(credentials.credentials)
    set_span_attributes({attributes.USER_ID: principal.user_id})
    return principal


async def current_user(
    ctx: Context, principal: Annotated[Principal, Depends(current_principal)]
) -> User:
    """The caller's account, read from the store: 401 too when it no longer exists, is
    disabled, or changed role or state (or logged out everywhere) after the token was issued."""
    user = await ctx.users.get(principal.user_id)
    if user is None:
        raise UnauthorizedError("the account of this token no longer exists", invalid_token=True)
    if user.disabled:
        raise UnauthorizedError("this account is disabled", invalid_token=True)
    if principal.token_generation < user.token_generation:
        raise UnauthorizedError(REVOKED, invalid_token=True)
    return user


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """The caller, if the stored account (not just the token) has the admin role; else 403."""
    if user.role is not Role.ADMIN:
        raise ForbiddenError("this needs the admin role")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(require_admin)]


def _span_attributes(check: RateLimitCheck) -> dict[str, AttributeValue]:
    decision, rule = check.decision, check.rule
    found: dict[str, AttributeValue | None] = {
        attributes.RATE_LIMIT_RULE: rule.name if rule else None,
        attributes.RATE_LIMIT_ALGORITHM: rule.algorithm.value if rule else None,
        RATE_LIMIT_SUBJECT_SCOPE: check.subject.split(":", 1)[0] if check.subject else None,
        attributes.RATE_LIMIT_ALLOWED: check.allowed,
        attributes.RATE_LIMIT_LIMIT: rule.limit if rule else None,
        attributes.RATE_LIMIT_REMAINING: decision.remaining if decision else None,
        RATE_LIMIT_DEGRADED: True if check.degraded else None,
    }
    return {k: v for k, v in found.items() if v is not None}


def rate_limited(rule: str | None = None) -> Callable[..., Awaitable[None]]:
    """A dependency that counts the request against the rule that applies (the rule named
    ``rule``, or the most specific pattern matching ``METHOD /path``) per user when a
    valid token came along, else per client address. Over the limit: 429 with ``Retry-After``;
    ``X-RateLimit-*`` go on every counted response (see ``middleware.py``)."""

    async def check_rate_limit(
        request: Request,
        ctx: Context,
        principal: Annotated[Principal | None, Depends(optional_principal)],
    ) -> None:
        route = request_path(request)
        client = client_address(request)
        set_span_attributes(
            {
                attributes.CLIENT_ADDRESS: client,
                attributes.USER_ID: principal.user_id if principal else None,
            }
        )
        request_span = trace.get_current_span()
        with start_span("rate_limit.check", tracer=ctx.tracer) as span:
            check = await ctx.rate_limits.check(
                method=request.method,
                path=route,
                user_id=principal.user_id if principal else None,
                client=client,
                rule_name=rule,
            )
            if check.rule is not None:
                found = _span_attributes(check)
                span.set_attributes(found)
                if request_span.is_recording():  # the request span, per the trace contract
                    request_span.set_attributes(found)
        if check.decision is None:
            return
        setattr(request.state, STATE_KEY, check.decision)
        if not check.decision.allowed:
            raise RateLimitedError(check.decision)

    return check_rate_limit
