"""The admin-token contract between the api (issues tokens, writes ``users``) and the services
that guard an admin API with ``integr8scode_auth`` (dlq-processor, event-replay), over the real
Mongo-wire server: a token the api issues verifies to its account, and every change the api
makes to the account (demote, disable, delete, promote again) is what the lib then decides on.
The api's own adapters write, the lib's read, as the processes would."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from integr8scode_api.adapters.mongo_users import COLLECTION as API_USERS
from integr8scode_api.adapters.mongo_users import MongoUserRepository
from integr8scode_api.adapters.tokens import JwtTokenIssuer
from integr8scode_api.domain.users import Role, User
from integr8scode_auth import (
    COLLECTION,
    JwtVerifier,
    MongoAccountDirectory,
    NotAdminError,
    Principal,
    TokenRejectedError,
    authorize_admin,
)

SECRET = "contract-secret-" + "x" * 48


async def test_the_lib_decides_on_what_the_api_issued_and_wrote(db: Any) -> None:
    assert COLLECTION == API_USERS
    users = MongoUserRepository(db[API_USERS])
    issuer = JwtTokenIssuer(SECRET, ttl_s=300)
    verifier = JwtVerifier(SECRET)
    accounts = MongoAccountDirectory(db[COLLECTION], ttl_s=0)  # every change seen at once

    def principal_of(user: User) -> Principal:
        return verifier.verify(issuer.issue(user).access_token)

    admin = User.new(f"boss{uuid.uuid4().hex[:8]}", "$argon2id$unused", Role.ADMIN)
    await users.add(admin)
    first = principal_of(admin)
    assert first == Principal(admin.id, "admin", 0)
    assert await authorize_admin(first, accounts) == first

    demoted = await users.update_access(admin.id, role=Role.USER)
    assert demoted is not None
    with pytest.raises(TokenRejectedError, match="revoked"):  # the old token: log in again
        await authorize_admin(first, accounts)
    with pytest.raises(NotAdminError):  # a fresh token says user
        await authorize_admin(principal_of(demoted), accounts)

    promoted = await users.update_access(admin.id, role=Role.ADMIN)
    assert promoted is not None
    second = principal_of(promoted)
    assert second.token_generation == 2
    assert await authorize_admin(second, accounts) == second

    disabled = await users.update_access(admin.id, disabled=True)
    assert disabled is not None
    with pytest.raises(TokenRejectedError, match="disabled"):
        await authorize_admin(principal_of(disabled), accounts)

    assert await users.delete(admin.id)
    with pytest.raises(TokenRejectedError, match="no longer exists"):
        await authorize_admin(second, accounts)
