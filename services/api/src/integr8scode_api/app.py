"""Composition root of integr8scode-backend: builds the resources, wires the routes, owns the
lifespan.

To add routes: put a router in ``routes/`` and append it to ``API_ROUTERS``; it is mounted under
``/api/v1`` with the rate limit applied. To add a resource: build it in ``create_app``, close it
in the lifespan, and hand it to the routes through ``ApiContext``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from redis.asyncio import Redis

from integr8scode_api import SERVICE_NAME, __version__
from integr8scode_api.adapters.coordinator_views import CoordinatorViews
from integr8scode_api.adapters.jaeger_traces import JaegerTraces
from integr8scode_api.adapters.mongo_executions import OUTBOX_COLLECTION, MongoExecutions
from integr8scode_api.adapters.mongo_notifications import (
    NOTIFICATIONS_COLLECTION,
    SETTINGS_COLLECTION,
    MongoNotificationLog,
    MongoNotificationSettings,
)
from integr8scode_api.adapters.mongo_users import COLLECTION as USERS
from integr8scode_api.adapters.mongo_users import MongoUserRepository
from integr8scode_api.adapters.passwords import Argon2PasswordHasher
from integr8scode_api.adapters.rate_limit_rules import RedisRuleStore
from integr8scode_api.adapters.redis_login_throttle import RedisLoginThrottle
from integr8scode_api.adapters.redis_probe import redis_reachable
from integr8scode_api.adapters.redis_rate_limit import RedisRateLimiter
from integr8scode_api.adapters.redis_status_feed import RedisStatusFeed
from integr8scode_api.adapters.tokens import JwtTokenIssuer
from integr8scode_api.config import Settings
from integr8scode_api.dependencies import ApiContext, rate_limited
from integr8scode_api.domain.accounts import AccountAdmin
from integr8scode_api.domain.auth import AuthService
from integr8scode_api.domain.rate_limit import RateLimitGate
from integr8scode_api.errors import install_error_handlers
from integr8scode_api.execution_service import ExecutionService
from integr8scode_api.handlers.lifecycle import LifecycleHandlers
from integr8scode_api.middleware import RateLimitHeadersMiddleware
from integr8scode_api.notification_service import NotificationService
from integr8scode_api.routes import admin_rate_limits, admin_users, auth
from integr8scode_api.routes.executions import ExecutionRouteBounds, build_execution_router
from integr8scode_api.routes.notifications import build_notification_router
from integr8scode_api.routes.page import build_page_router
from integr8scode_api.routes.timeline import build_timeline_router
from integr8scode_api.timeline_service import TimelineService
from integr8scode_events import ProducerInfo
from integr8scode_events.kafka import ConsumerRunner, EventPublisher, KafkaProbe
from integr8scode_events.topics import EXECUTION_EVENTS
from integr8scode_mongo import mongo_client, mongo_ping
from integr8scode_secrets import SecretBox
from integr8scode_telemetry import (
    HealthProbe,
    ResourceStack,
    Supervisor,
    build_health_router,
    init_telemetry,
    instrument_fastapi,
    service_lifespan,
    untraced,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Every public router, mounted under API_PREFIX behind the rate limit. Append new ones here.
API_ROUTERS: tuple[APIRouter, ...] = (auth.router, admin_rate_limits.router, admin_users.router)


def create_app(settings: Settings) -> FastAPI:
    """Build the app and every resource it owns; nothing connects before the lifespan starts."""
    environment = settings.environment
    jwt_secret = settings.auth.resolve_jwt_secret(environment)
    settings.auth.check_admin_password(environment)
    # Refuses a missing key ring outside local environments, before anything else is built.
    secret_box = SecretBox(settings.secrets.key_ring(environment))
    telemetry = init_telemetry(settings.telemetry, SERVICE_NAME, __version__)
    mongo = mongo_client(settings.mongo)
    db = mongo[settings.mongo.database]
    kafka_probe = KafkaProbe(settings.kafka, client_id=SERVICE_NAME)
    redis = Redis.from_url(settings.redis.url, socket_connect_timeout=settings.health_timeout_s)
    # The limiter's own client: short timeouts, so a hung Redis delays a request by at most
    # that much (then the gate backs off) and the other Redis users keep their own settings.
    rl = settings.rate_limit
    limiter_redis = Redis.from_url(
        settings.redis.url,
        socket_connect_timeout=rl.redis_timeout_s,
        socket_timeout=rl.redis_timeout_s,
    )

    users = MongoUserRepository(
        mongo[settings.mongo.database][USERS], cache_ttl_s=settings.auth.account_cache_s
    )
    hasher = Argon2PasswordHasher(
        time_cost=settings.auth.password_hash_time_cost,
        memory_kib=settings.auth.password_hash_memory_kib,
        parallelism=settings.auth.password_hash_parallelism,
        concurrency=settings.auth.password_hash_concurrency,
    )
    tokens = JwtTokenIssuer(jwt_secret, settings.auth.access_token_ttl_s)
    rules = RedisRuleStore(
        limiter_redis,
        settings.redis_key_prefix,
        rl.default_rules(),
        cache_ttl_s=rl.rules_cache_ttl_s,
    )
    gate = RateLimitGate(
        RedisRateLimiter(limiter_redis, settings.redis_key_prefix),
        rules,
        enabled=rl.enabled,
        fail_open=rl.fail_open,
        backoff_s=rl.backoff_s,
    )
    auth_service = AuthService(
        users,
        hasher,
        tokens,
        reserved_usernames=frozenset({settings.auth.admin_username}),
        throttle=RedisLoginThrottle(
            limiter_redis,
            settings.redis_key_prefix,
            max_failures=settings.auth.login_max_failures,
            window_s=settings.auth.login_failure_window_s,
        ),
    )
    ctx = ApiContext(
        auth=auth_service,
        users=users,
        tokens=tokens,
        rate_limits=gate,
        rules=rules,
        accounts=AccountAdmin(users),
        tracer=telemetry.tracer,
    )

    publisher = EventPublisher(
        settings.kafka, SERVICE_NAME, tracer_provider=telemetry.tracer_provider
    )
    executions = MongoExecutions(db["executions"], db["idempotency_keys"], db[OUTBOX_COLLECTION])
    feed = RedisStatusFeed(redis, prefix=settings.redis_key_prefix)
    execution_service = ExecutionService(
        executions=executions,
        views=CoordinatorViews(db),
        publisher=publisher,
        feed=feed,
        policy=settings.execution.policy(),
        producer=ProducerInfo(service=SERVICE_NAME, version=__version__),
        submit_timeout_s=settings.kafka.request_timeout_ms / 1000,
        tracer=telemetry.tracer,
    )
    notifications = NotificationService(
        settings=MongoNotificationSettings(db[SETTINGS_COLLECTION], secret_box),
        log=MongoNotificationLog(db[NOTIFICATIONS_COLLECTION]),
        policy=settings.notifications.policy(),
    )
    jaeger_http = httpx.AsyncClient(
        base_url=settings.timeline.jaeger_query_url,
        timeout=settings.timeline.query_timeout_s,
    )
    timelines = TimelineService(
        execution_service, JaegerTraces(jaeger_http, ui_url=settings.timeline.jaeger_ui_url)
    )
    status_consumer = ConsumerRunner(
        settings=settings.kafka,
        group_id=settings.execution.status_consumer_group,
        topics=[EXECUTION_EVENTS.name],
        publisher=publisher,
        handlers=LifecycleHandlers(executions, feed).registry(),
        tracer_provider=telemetry.tracer_provider,
    )
    supervisor = Supervisor()

    async def prepare_then_consume() -> None:
        # Retried by the supervisor until Mongo and Kafka answer. Index creation is
        # housekeeping: untraced, not a root trace per index.
        with untraced():
            await executions.ensure_indexes()
            await publisher.start()
        await status_consumer.run()

    supervisor.add("status-consumer", prepare_then_consume, on_stop=status_consumer.stop)

    outbox_stop = asyncio.Event()

    async def flush_submissions() -> None:
        # Requests the broker didn't confirm in time, re-published until it does.
        while not outbox_stop.is_set():
            await execution_service.flush_outbox()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outbox_stop.wait(), settings.execution.outbox_interval_s)

    supervisor.add("submission-outbox", flush_submissions, on_stop=outbox_stop.set)

    async def listen_for_status() -> None:
        # The process's one subscription to every execution's status changes (SSE streams
        # and waiting POSTs subscribe in memory); re-run by the supervisor when Redis drops it.
        with untraced():
            await feed.listen()

    supervisor.add("status-feed", listen_for_status, on_stop=feed.stop)

    async def open_resources(stack: ResourceStack) -> None:
        # Each close registered as its resource opens; they run in reverse at shutdown, the
        # telemetry flush last, and one that fails skips none of the others.
        stack.close_with("telemetry", telemetry.shutdown)
        stack.close_with("limiter redis", limiter_redis.aclose)
        stack.close_with("redis", redis.aclose)
        stack.close_with("jaeger client", jaeger_http.aclose)
        # The driver's endSessions: no root trace at shutdown.
        stack.close_with("mongo", mongo.close, untraced_close=True)
        stack.close_with("kafka probe", kafka_probe.close)
        stack.close_with("publisher", publisher.stop)
        supervisor.start()
        stack.close_with("workers", supervisor.stop)
        # The admin is created in the background, retried until Mongo answers: the service
        # starts and reports readiness honestly even while its dependencies are down. Start-up
        # housekeeping: untraced (the task copies this context).
        with untraced():
            bootstrap = asyncio.create_task(
                auth_service.bootstrap_admin(
                    settings.auth.admin_username, settings.auth.admin_password.get_secret_value()
                ),
                name="admin-bootstrap",
            )
        bootstrap.add_done_callback(_log_failure)
        stack.close_with("admin bootstrap", lambda: _cancel(bootstrap))

    probes = [
        HealthProbe("kafka", kafka_probe.check),
        HealthProbe("workers", supervisor.check),
        HealthProbe("mongo", mongo_ping(mongo)),
        HealthProbe("redis", lambda: redis_reachable(redis)),
        HealthProbe("status-feed", feed.ready),
    ]
    app = build_app(
        ctx,
        lifespan=service_lifespan(SERVICE_NAME, open_resources, heap=settings.heap),
        probes=probes,
        health_timeout_s=settings.health_timeout_s,
        executions=execution_service,
        execution_bounds=ExecutionRouteBounds(
            wait_max_s=settings.execution.wait_max_s,
            max_batch=settings.execution.max_batch,
            max_ids=settings.execution.max_ids,
        ),
        timelines=timelines,
    )
    app.include_router(build_notification_router(notifications, rate_limited()))
    instrument_fastapi(app, telemetry)
    return app


def build_app(
    ctx: ApiContext,
    *,
    lifespan: Any = None,
    probes: Sequence[HealthProbe] = (),
    health_timeout_s: float = 2.0,
    routers: Sequence[APIRouter] = API_ROUTERS,
    executions: ExecutionService | None = None,
    execution_bounds: ExecutionRouteBounds | None = None,
    timelines: TimelineService | None = None,
) -> FastAPI:
    """The HTTP app over ready-made resources (``create_app`` builds the real ones; the unit
    tests pass fakes). Without ``executions`` the app has no execution routes, without
    ``timelines`` no timeline route; the execution page (static files) is always there."""
    app = FastAPI(title=SERVICE_NAME, version=__version__, lifespan=lifespan)
    app.state.api = ctx
    install_error_handlers(app)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.include_router(build_health_router(SERVICE_NAME, probes, health_timeout_s))
    for router in routers:
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(rate_limited())])
    if executions is not None:
        # They carry their own prefix and rate-limit dependencies.
        app.include_router(
            build_execution_router(
                executions,
                execute_rate_limit=rate_limited(),
                default_rate_limit=rate_limited(),
                bounds=execution_bounds,
            )
        )
    if timelines is not None:
        app.include_router(build_timeline_router(timelines, rate_limited()))
    app.include_router(build_page_router())
    return app


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())
