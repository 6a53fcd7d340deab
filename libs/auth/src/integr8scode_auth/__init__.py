"""Checking the api's access tokens in the services that guard an admin API (dlq-processor,
event-replay): the JWT verifier, the account as it is now (the api's ``users`` collection,
cached briefly), and the admin check. The lib raises its own errors; each service maps them to
its HTTP answers at its edge."""

from __future__ import annotations

from integr8scode_auth.admission import admit_admin, authorize_admin
from integr8scode_auth.errors import (
    AccountStoreUnavailableError,
    AuthError,
    NotAdminError,
    TokenRejectedError,
)
from integr8scode_auth.mongo_accounts import COLLECTION, MongoAccountDirectory
from integr8scode_auth.ports import AccountDirectory, TokenVerifier
from integr8scode_auth.records import ADMIN_ROLE, AccountStatus, Principal
from integr8scode_auth.settings import ACCOUNT_CACHE_S, AccountCacheSeconds
from integr8scode_auth.tokens import JwtVerifier

__all__ = [
    "ACCOUNT_CACHE_S",
    "ADMIN_ROLE",
    "COLLECTION",
    "AccountCacheSeconds",
    "AccountDirectory",
    "AccountStatus",
    "AccountStoreUnavailableError",
    "AuthError",
    "JwtVerifier",
    "MongoAccountDirectory",
    "NotAdminError",
    "Principal",
    "TokenRejectedError",
    "TokenVerifier",
    "admit_admin",
    "authorize_admin",
]
