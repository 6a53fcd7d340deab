"""Account administration: list, change role, disable, delete, revoke tokens (admins only).

Every change of role or state raises the account's token generation, so each token issued
before it stops opening anything: in the api at once (its routes read the account), in the
dlq-processor and event-replay within their account cache (≤ 2 s by default).

Two guards keep the platform administrable: an admin can't demote, disable or delete their
own account (another admin must), and no change may leave no active admin. That second check
is "check, change, check again, undo": two admins demoting each other at the same instant
both see the other still there; the re-check after the write sees zero and puts the account
back, so the race ends with admins left (at worst with both changes undone), never with none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from integr8scode_api.domain.errors import ConflictError, NotFoundError
from integr8scode_api.domain.ports import UserRepository
from integr8scode_api.domain.users import Role, User

log = logging.getLogger(__name__)

NO_ADMIN_LEFT = "that would leave no active admin; promote another account first"


class AccountAdmin:
    def __init__(self, users: UserRepository) -> None:
        self._users = users

    async def page(self, *, offset: int, limit: int, role: Role | None = None) -> Sequence[User]:
        return await self._users.page(offset=offset, limit=limit, role=role)

    async def get(self, user_id: str) -> User:
        user = await self._users.get(user_id)
        if user is None:
            raise NotFoundError(f"no user '{user_id}'")
        return user

    async def change(
        self, actor: User, user_id: str, *, role: Role | None = None, disabled: bool | None = None
    ) -> User:
        """Set the role and/or the disabled flag; a change voids the account's tokens. Asking
        for what already is changes nothing (and voids nothing)."""
        target = await self.get(user_id)
        role = None if role is target.role else role
        disabled = None if disabled is target.disabled else disabled
        if role is None and disabled is None:
            return target
        loses_admin = _active_admin(target) and (role is Role.USER or disabled is True)
        if loses_admin:
            await self._guard(actor, target, "demote or disable")
        changed = await self._users.update_access(user_id, role=role, disabled=disabled)
        if changed is None:  # deleted meanwhile
            raise NotFoundError(f"no user '{user_id}'")
        if loses_admin and await self._users.count_active_admins() == 0:
            await self._users.update_access(user_id, role=target.role, disabled=target.disabled)
            log.warning("undid the change of %s: it left no active admin", user_id)
            raise ConflictError(NO_ADMIN_LEFT)
        log.info(
            "%s changed %s: role=%s disabled=%s", actor.id, user_id, changed.role, changed.disabled
        )
        return changed

    async def delete(self, actor: User, user_id: str) -> None:
        target = await self.get(user_id)
        admin = _active_admin(target)
        if target.id == actor.id or admin:
            await self._guard(actor, target, "delete")
        if not await self._users.delete(user_id):
            raise NotFoundError(f"no user '{user_id}'")
        if admin and await self._users.count_active_admins() == 0:
            # Its old tokens stay void: the generation they carry is below the restored one.
            await self._users.add(
                target.model_copy(update={"token_generation": target.token_generation + 1})
            )
            log.warning("restored %s: deleting it left no active admin", user_id)
            raise ConflictError(NO_ADMIN_LEFT)
        log.info("%s deleted user %s", actor.id, user_id)

    async def revoke_tokens(self, actor: User, user_id: str) -> User:
        """Void every token of the account ("log out everywhere", done by an admin)."""
        changed = await self._users.update_access(user_id)
        if changed is None:
            raise NotFoundError(f"no user '{user_id}'")
        log.info("%s revoked every token of %s", actor.id, user_id)
        return changed

    async def _guard(self, actor: User, target: User, what: str) -> None:
        if target.id == actor.id:
            raise ConflictError(f"you can't {what} your own account; another admin can")
        if _active_admin(target) and await self._users.count_active_admins() <= 1:
            raise ConflictError(NO_ADMIN_LEFT)


def _active_admin(user: User) -> bool:
    return user.role is Role.ADMIN and not user.disabled
