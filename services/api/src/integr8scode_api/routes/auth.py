"""``/api/v1/auth``: register, log in, who am I, log out everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from integr8scode_api.dependencies import Context, CurrentUser
from integr8scode_api.domain.users import (
    PASSWORD_MAX,
    USERNAME_MAX,
    Role,
    User,
    check_password,
    normalize_username,
)
from integr8scode_telemetry import attributes, set_span_attributes

router = APIRouter(prefix="/auth", tags=["auth"])

_ERROR = {"description": 'Error, as {"detail": "..."}'}


class RegisterRequest(BaseModel):
    username: str = Field(
        description="3-32 characters: letters, digits, '_', '.', '-'; case-insensitive, "
        "stored in lower case",
        examples=["alice"],
    )
    password: str = Field(
        description="8-128 characters, not the username, not easy to guess (common passwords, "
        "keyboard walks, repeats and the like are refused with the reason)",
        examples=["correct horse battery"],
    )

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return normalize_username(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        # ``username`` is declared first, so it is validated (and normalized) by now, if valid.
        return check_password(value, info.data.get("username"))


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=USERNAME_MAX * 2, examples=["alice"])
    password: str = Field(min_length=1, max_length=PASSWORD_MAX * 8)


class UserView(BaseModel):
    id: str
    username: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(id=user.id, username=user.username, role=user.role, created_at=user.created_at)


REGISTERED = (
    "registration received; log in with these credentials. If the name (or one that looks "
    "like it) was already taken, no account was made and the login fails: register another."
)


class RegistrationView(BaseModel):
    """The same for a free name and a taken one: registering can't tell who has an account."""

    username: str = Field(description="The name as stored (lower case, width-folded)")
    detail: str = Field(examples=[REGISTERED])


class TokenView(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        422: {
            "description": "Bad username or password, or a reserved name (admin, root, ...) "
            "or a look-alike of one"
        },
        429: _ERROR,
    },
)
async def register(body: RegisterRequest, ctx: Context) -> RegistrationView:
    """Create an account with the role ``user``. The answer is the same (202, same body, one
    password hash of work) whether the name was free or taken, or looks like a taken one
    (``0``/``o``, ``1``/``l``, ``rn``/``m``, ``vv``/``w``, full-width forms): a taken name
    shows at login, which fails. The account's id is in ``GET /auth/me`` after logging in."""
    name = await ctx.auth.sign_up(body.username, body.password)
    return RegistrationView(username=name, detail=REGISTERED)


@router.post("/login", responses={401: _ERROR, 422: _ERROR, 429: _ERROR})
async def login(body: LoginRequest, ctx: Context) -> TokenView:
    """Exchange credentials for a bearer token. One answer for an unknown user and a wrong
    password."""
    token = await ctx.auth.login(body.username, body.password)
    return TokenView(access_token=token.access_token, expires_in=token.expires_in)


@router.get("/me", responses={401: _ERROR})
async def me(user: CurrentUser) -> UserView:
    """The caller's account."""
    set_span_attributes({attributes.USER_ID: user.id})
    return UserView.of(user)


@router.post(
    "/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses={401: _ERROR, 503: _ERROR}
)
async def logout_all(user: CurrentUser, ctx: Context) -> Response:
    """Revoke every token of the caller's account, this one included, on every service (the
    dlq-processor and event-replay honour it within their account cache, ≤ 2 s by default)."""
    await ctx.auth.log_out_everywhere(user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
