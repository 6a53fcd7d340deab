"""Fakes behind the API's Protocols, and an app wired with them (unit tests); in-process apps
against the local stack, each test with its own database and Redis prefix (integration).

Test modules import the fake classes for typing only (``if TYPE_CHECKING: from conftest ...``):
conftest is not importable at run time under ``--import-mode=importlib``."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_api.adapters.tokens import JwtTokenIssuer
from integr8scode_api.app import build_app, create_app
from integr8scode_api.config import RateLimitSettings, Settings
from integr8scode_api.dependencies import ApiContext
from integr8scode_api.domain.accounts import AccountAdmin
from integr8scode_api.domain.auth import AuthService
from integr8scode_api.domain.errors import ConflictError, DependencyUnavailableError
from integr8scode_api.domain.lookalikes import skeleton
from integr8scode_api.domain.rate_limit import (
    ListedRule,
    RateLimitDecision,
    RateLimitGate,
    RateLimitRule,
)
from integr8scode_api.domain.users import Role, User

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
ADMIN = ("opschief", "opschief-password")  # not one of the public reserved names


class FakeUsers:
    """``UserRepository`` in a dict; ``down`` makes every call raise DependencyUnavailableError."""

    def __init__(self) -> None:
        self.by_id: dict[str, User] = {}
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise DependencyUnavailableError("user store unavailable", dependency="mongo")

    async def ensure_indexes(self) -> None:
        self._check()

    async def add(self, user: User) -> None:
        self._check()
        if any(skeleton(u.username) == skeleton(user.username) for u in self.by_id.values()):
            raise ConflictError(f"username '{user.username}' is already taken")
        self.by_id[user.id] = user

    async def get(self, user_id: str) -> User | None:
        self._check()
        return self.by_id.get(user_id)

    async def by_username(self, username: str) -> User | None:
        self._check()
        return next((u for u in self.by_id.values() if u.username == username), None)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._check()
        self.by_id[user_id] = self.by_id[user_id].model_copy(
            update={"password_hash": password_hash}
        )

    async def page(self, *, offset: int, limit: int, role: Role | None = None) -> Sequence[User]:
        self._check()
        found = [u for u in self.by_id.values() if role is None or u.role is role]
        found.sort(key=lambda u: u.created_at, reverse=True)
        return found[offset : offset + limit]

    async def update_access(
        self, user_id: str, *, role: Role | None = None, disabled: bool | None = None
    ) -> User | None:
        self._check()
        user = self.by_id.get(user_id)
        if user is None:
            return None
        changes: dict[str, Any] = {"token_generation": user.token_generation + 1}
        if role is not None:
            changes["role"] = role
        if disabled is not None:
            changes["disabled"] = disabled
        self.by_id[user_id] = user = user.model_copy(update=changes)
        return user

    async def delete(self, user_id: str) -> bool:
        self._check()
        return self.by_id.pop(user_id, None) is not None

    async def count_active_admins(self) -> int:
        self._check()
        return sum(1 for u in self.by_id.values() if u.role is Role.ADMIN and not u.disabled)


class FakeHasher:
    """Reversible "hashes" (``v<version>$<password>``): fast, and lets tests see what was
    verified. Hashes of an older ``version`` need a rehash."""

    def __init__(self) -> None:
        self.version = 2
        self.verified: list[str] = []

    async def hash(self, password: str) -> str:
        return f"v{self.version}${password}"

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash.split("$", 1)[1] == password

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"v{self.version}$")


class FakeLimiter:
    """``RateLimiter`` with a fixed window that never rolls over: ``limit`` hits, then refusals
    with ``retry_after_s = window_s``. ``down`` makes it raise DependencyUnavailableError."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.down = False
        self.calls = 0

    async def hit(self, rule: RateLimitRule, subject: str) -> RateLimitDecision:
        self.calls += 1
        if self.down:
            raise DependencyUnavailableError("rate limiter unavailable", dependency="redis")
        key = (rule.name, subject)
        used = self.counts.get(key, 0)
        allowed = used < rule.limit
        if allowed:
            self.counts[key] = used = used + 1
        return RateLimitDecision(
            allowed=allowed,
            limit=rule.limit,
            remaining=rule.limit - used,
            reset_after_s=rule.window_s,
            retry_after_s=0.0 if allowed else rule.window_s,
            algorithm=rule.algorithm,
            rule=rule.name,
            window_s=rule.window_s,
        )


class FakeRules:
    """``RateLimitRuleStore`` in memory: defaults plus overrides, no cache."""

    def __init__(self, defaults: Sequence[RateLimitRule]) -> None:
        self.defaults = {r.name: r for r in defaults}
        self.overrides: dict[str, RateLimitRule] = {}

    async def active_rules(self) -> Sequence[RateLimitRule]:
        return list({**self.defaults, **self.overrides}.values())

    async def list_rules(self) -> Sequence[ListedRule]:
        merged = {**self.defaults, **self.overrides}
        return [
            ListedRule(rule=r, overridden=n in self.overrides) for n, r in sorted(merged.items())
        ]

    async def put(self, rule: RateLimitRule) -> None:
        self.overrides[rule.name] = rule

    async def delete(self, name: str) -> bool:
        return self.overrides.pop(name, None) is not None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """An app over fakes, and handles on every fake."""

    users: FakeUsers
    hasher: FakeHasher
    limiter: FakeLimiter
    rules: FakeRules
    tokens: JwtTokenIssuer
    clock: FakeClock
    gate: RateLimitGate
    auth: AuthService
    app: FastAPI
    client: TestClient
    _names: Iterator[int] = field(default_factory=itertools.count)

    def add_user(self, username: str | None = None, role: Role = Role.USER) -> User:
        name = username or f"user{next(self._names)}"
        user = User(
            id=uuid.uuid4().hex,
            username=name,
            role=role,
            password_hash=f"v{self.hasher.version}$pw-{name}",
            created_at=datetime.now(UTC),
        )
        self.users.by_id[user.id] = user
        return user

    def bearer(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(user).access_token}"}


def build_harness(*, fail_open: bool = True, rate_limit: dict[str, Any] | None = None) -> Harness:
    users, hasher, limiter, clock = FakeUsers(), FakeHasher(), FakeLimiter(), FakeClock()
    rules = FakeRules(RateLimitSettings.model_validate(rate_limit or {}).default_rules())
    tokens = JwtTokenIssuer(SECRET, ttl_s=3600)
    gate = RateLimitGate(limiter, rules, fail_open=fail_open, backoff_s=1.0, clock=clock)
    auth = AuthService(users, hasher, tokens, reserved_usernames=frozenset({ADMIN[0]}))
    ctx = ApiContext(
        auth=auth,
        users=users,
        tokens=tokens,
        rate_limits=gate,
        rules=rules,
        accounts=AccountAdmin(users),
    )
    app = build_app(ctx)
    client = TestClient(app, raise_server_exceptions=False)
    return Harness(users, hasher, limiter, rules, tokens, clock, gate, auth, app, client)


@pytest.fixture
def harness() -> Harness:
    return build_harness()


@pytest.fixture
def harness_factory() -> Callable[..., Harness]:
    """``build_harness`` itself, for tests that need other options."""
    return build_harness


@pytest.fixture
def gate_parts() -> tuple[FakeLimiter, FakeRules, FakeClock]:
    """A limiter, rules (``auth`` at 2 per minute) and a clock for a gate under test."""
    return FakeLimiter(), FakeRules(RateLimitSettings(auth_limit=2).default_rules()), FakeClock()


@pytest.fixture
def dead_settings() -> Settings:
    """Settings whose every dependency is unreachable."""
    return Settings.model_validate(
        {
            "health_timeout_s": 3.0,
            "kafka": {"bootstrap_servers": "127.0.0.1:1", "request_timeout_ms": 1000},
            "mongo": {"url": "mongodb://127.0.0.1:1", "server_selection_timeout_ms": 300},
            "telemetry": {"sdk_disabled": True},
            "redis": {"url": "redis://127.0.0.1:1/0"},
        }
    )


# --- integration: an in-process app against the local stack --------------------------------


@dataclass
class LiveStack:
    """A database name and Redis prefix of its own per test; apps built over them, each with
    its lifespan running, reached through ``httpx`` in-process. Everything is removed after."""

    database: str
    prefix: str
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Redis
    _stack: AsyncExitStack

    def settings(self, **overrides: Any) -> Settings:
        stack = local_stack()
        fields: dict[str, Any] = {
            "redis_key_prefix": self.prefix,
            "mongo": {
                "url": stack.mongo_url,
                "database": self.database,
                "server_selection_timeout_ms": 3000,
            },
            "redis": {"url": stack.redis_url},
            "kafka": {"bootstrap_servers": stack.kafka_bootstrap},
            "telemetry": {"sdk_disabled": True},
            "auth": {
                "jwt_secret": SECRET,
                "admin_username": ADMIN[0],
                "admin_password": ADMIN[1],
                "password_hash_time_cost": 1,
                "password_hash_memory_kib": 1024,
                "password_hash_parallelism": 1,
            },
            "rate_limit": {"rules_cache_ttl_s": 0.5},
        }
        for key, value in overrides.items():
            fields[key] = {**fields[key], **value} if isinstance(value, dict) else value
        return Settings.model_validate(fields)

    apps: dict[int, FastAPI] = field(default_factory=dict)

    async def client(
        self,
        settings: Settings | None = None,
        *,
        address: str = "10.1.2.3",
        same_app_as: httpx.AsyncClient | None = None,
    ) -> httpx.AsyncClient:
        """A client of a new app (a new API process), or of the app of ``same_app_as``,
        calling from ``address``."""
        if same_app_as is not None:
            app = self.apps[id(same_app_as)]
        else:
            app = create_app(settings or self.settings())
            await self._stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=(address, 4321))
        client = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://api")
        )
        self.apps[id(client)] = app
        return client

    async def admin_headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        """A bearer header for the bootstrap admin, once the background bootstrap made it."""

        async def login() -> dict[str, str] | None:
            response = await client.post(
                "/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
            )
            if response.status_code != 200:
                return None
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        return await eventually(login, timeout_s=20, what="admin bootstrapped")


@pytest.fixture
async def live() -> AsyncIterator[LiveStack]:
    stack = local_stack()
    tag = uuid.uuid4().hex[:10]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_url, serverSelectionTimeoutMS=3000
    )
    redis = Redis.from_url(stack.redis_url)
    exits = AsyncExitStack()
    live = LiveStack(f"api_it_{tag}", f"it:{tag}:", mongo, redis, exits)
    try:
        async with exits:
            yield live
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{live.prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
        await mongo.drop_database(live.database)
        await mongo.close()
        await redis.aclose()
