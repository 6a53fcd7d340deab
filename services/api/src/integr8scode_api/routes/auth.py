"""``/api/v1/auth``: register, log in, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
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


class TokenView(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses={409: _ERROR, 422: _ERROR, 429: _ERROR},
)
async def register(body: RegisterRequest, ctx: Context) -> UserView:
    """Create an account with the role ``user``."""
    user = await ctx.auth.register(body.username, body.password)
    set_span_attributes({attributes.USER_ID: user.id})
    return UserView.of(user)


@router.post("/login", responses={401: _ERROR, 422: _ERROR, 429: _ERROR})
async def login(body: LoginRequest, ctx: Context) -> TokenView:
    """Exchange credentials for a bearer token. One answer for an unknown user and a wrong
    password."""
    token = await ctx.auth.login(body.username, body.password)
    return TokenView(access_token=token.access_token, expires_in=token.expires_in)


@router.get("/me", responses={401: _ERROR})
async def me(user: CurrentUser) -> UserView:
    """The caller's account."""
    return UserView.of(user)
