"""``/api/v1/admin/users``: list accounts, change a role, disable, delete, revoke tokens
(admins). Any change of role or state voids the account's tokens on every service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from integr8scode_api.dependencies import AdminUser, Context, require_admin
from integr8scode_api.domain.users import Role, User
from integr8scode_api.routes.pagination import Limit, Offset

_ERROR = {"description": 'Error, as {"detail": "..."}'}

router = APIRouter(
    prefix="/admin/users",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"description": "No valid token (missing, expired, revoked)"},
        403: {"description": "Not an admin"},
        503: {"description": "The user store is unavailable; retry after Retry-After"},
    },
)

UserId = Annotated[str, Path(min_length=1, max_length=64, description="The account's id")]


class AccountView(BaseModel):
    id: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    token_generation: int = Field(
        description="Goes up at every change of role or state and at 'log out everywhere'; "
        "tokens issued before the last change are refused"
    )

    @classmethod
    def of(cls, user: User) -> AccountView:
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at,
            token_generation=user.token_generation,
        )


class AccountChange(BaseModel):
    """What to change; at least one field. Asking for what already is changes nothing."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = Field(
        default=None, description="A disabled account can't log in; its tokens open nothing"
    )

    @model_validator(mode="after")
    def _something(self) -> AccountChange:
        if self.role is None and self.disabled is None:
            raise ValueError("give 'role' and/or 'disabled'")
        return self


@router.get("")
async def list_users(
    ctx: Context,
    offset: Offset = 0,
    limit: Limit = 50,
    role: Annotated[Role | None, Query(description="Only accounts with this role")] = None,
) -> list[AccountView]:
    """Accounts, newest first."""
    users = await ctx.accounts.page(offset=offset, limit=limit, role=role)
    return [AccountView.of(u) for u in users]


@router.get("/{user_id}", responses={404: _ERROR})
async def get_user(user_id: UserId, ctx: Context) -> AccountView:
    """One account."""
    return AccountView.of(await ctx.accounts.get(user_id))


@router.patch(
    "/{user_id}",
    responses={
        404: _ERROR,
        409: {"description": "Your own account, or it would leave no active admin"},
    },
)
async def change_user(
    user_id: UserId, body: AccountChange, ctx: Context, admin: AdminUser
) -> AccountView:
    """Change the role and/or disable or enable the account. A change voids every token the
    account holds: it logs in again (and gets a token with its new role). You can't demote or
    disable yourself, nor the last active admin."""
    changed = await ctx.accounts.change(admin, user_id, role=body.role, disabled=body.disabled)
    return AccountView.of(changed)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: _ERROR,
        409: {"description": "Your own account, or the last active admin"},
    },
)
async def delete_user(user_id: UserId, ctx: Context, admin: AdminUser) -> Response:
    """Delete the account; its tokens stop working at once (its executions stay). The name
    becomes free again."""
    await ctx.accounts.delete(admin, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{user_id}/revoke-tokens", responses={404: _ERROR})
async def revoke_tokens(user_id: UserId, ctx: Context, admin: AdminUser) -> AccountView:
    """Void every token the account holds ("log out everywhere"); it may log in again."""
    return AccountView.of(await ctx.accounts.revoke_tokens(admin, user_id))
