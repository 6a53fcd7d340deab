"""Composition root of dlq-processor: builds the resources, wires the consumer, the retry
scheduler and the admin routes, owns the lifespan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from integr8scode_auth import COLLECTION as USERS
from integr8scode_auth import JwtVerifier, MongoAccountDirectory
from integr8scode_dlq_processor import SERVICE_NAME, __version__
from integr8scode_dlq_processor.adapters.kafka_republisher import KafkaRepublisher
from integr8scode_dlq_processor.adapters.mongo_attempts import COLLECTION as ATTEMPTS
from integr8scode_dlq_processor.adapters.mongo_attempts import MongoAttemptClaims
from integr8scode_dlq_processor.adapters.mongo_dead_letters import COLLECTION as DEAD_LETTERS
from integr8scode_dlq_processor.adapters.mongo_dead_letters import MongoDeadLetterStore
from integr8scode_dlq_processor.config import Settings
from integr8scode_dlq_processor.domain.dead_letters import DeadLetterService
from integr8scode_dlq_processor.domain.updates import RecordUpdater
from integr8scode_dlq_processor.errors import install_error_handlers
from integr8scode_dlq_processor.handlers.dead_letters import DeadLetterHandler
from integr8scode_dlq_processor.retries import RetryRunner
from integr8scode_dlq_processor.routes import messages
from integr8scode_dlq_processor.routes.dependencies import DlqContext
from integr8scode_dlq_processor.scheduler import RetryScheduler
from integr8scode_events import headers as h
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    KafkaProbe,
    RetryPolicy,
    create_missing_topics,
)
from integr8scode_events.topics import DEAD_LETTER_QUEUE
from integr8scode_mongo import mongo_client, mongo_ping
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

# The DLQ consumer never gives a message up; while Mongo is down it retries with this backoff.
_INTAKE_RETRY = RetryPolicy(initial_backoff_s=0.2, max_backoff_s=10.0)


def create_app(settings: Settings) -> FastAPI:
    """Build the app and every resource it owns; nothing connects before the lifespan starts."""
    jwt_secret = settings.resolve_jwt_secret()
    policies = settings.policy_book()
    telemetry = init_telemetry(settings.telemetry, SERVICE_NAME, __version__)
    mongo = mongo_client(settings.mongo)
    db = mongo[settings.mongo.database]
    kafka_probe = KafkaProbe(settings.kafka, client_id=SERVICE_NAME)
    publisher = EventPublisher(
        settings.kafka, SERVICE_NAME, tracer_provider=telemetry.tracer_provider
    )
    meter = telemetry.meter_provider.get_meter(SERVICE_NAME, __version__)
    store = MongoDeadLetterStore(db[DEAD_LETTERS])
    claims = MongoAttemptClaims(db[ATTEMPTS])
    updater = RecordUpdater(store)
    service = DeadLetterService(updater, policies)
    runner = RetryRunner(
        updater,
        claims,
        KafkaRepublisher(publisher),
        owner=settings.instance_id,
        claim_lease=timedelta(seconds=settings.claim_lease_s),
        publish_retry=timedelta(seconds=settings.publish_retry_s),
        tracer=telemetry.tracer_provider.get_tracer(SERVICE_NAME),
        meter=meter,
    )
    scheduler = RetryScheduler(
        runner,
        poll_interval_s=settings.poll_interval_s,
        batch_size=settings.scheduler_batch,
        concurrency=settings.scheduler_concurrency,
    )
    consumer = ConsumerRunner(
        settings=settings.kafka,
        group_id=settings.consumer_group,
        topics=[DEAD_LETTER_QUEUE.name],
        publisher=publisher,
        raw_handler=DeadLetterHandler(service, on_scheduled=scheduler.wake, meter=meter),
        retry=_INTAKE_RETRY,
        dead_letter_topic=None,
        span_name="dlq.consume",
        # Its parent is the failed message's context; it links to the span that dead-lettered it.
        link_header=h.DEAD_LETTERED_BY,
        tracer_provider=telemetry.tracer_provider,
    )
    supervisor = Supervisor()

    async def prepare_then_consume() -> None:
        # Retried by the supervisor until Kafka and Mongo answer. Index creation is
        # housekeeping: untraced, not a root trace per index.
        with untraced():
            await create_missing_topics(settings.kafka, SERVICE_NAME)
            await store.ensure_indexes()
            await claims.ensure_indexes()
            await publisher.start()
        await consumer.run()

    async def prepare_then_schedule() -> None:
        await publisher.start()
        await scheduler.run()

    supervisor.add("dlq-consumer", prepare_then_consume, on_stop=consumer.stop)
    supervisor.add("retry-scheduler", prepare_then_schedule, on_stop=scheduler.stop)

    async def open_resources(stack: ResourceStack) -> None:
        # Each close registered as its resource opens; they run in reverse at shutdown, the
        # telemetry flush last, and one that fails skips none of the others.
        stack.close_with("telemetry", telemetry.shutdown)
        # The driver's endSessions: no root trace at shutdown.
        stack.close_with("mongo", mongo.close, untraced_close=True)
        stack.close_with("kafka probe", kafka_probe.close)
        stack.close_with("publisher", publisher.stop)
        supervisor.start()
        stack.close_with("workers", supervisor.stop)

    ctx = DlqContext(
        service=service,
        tokens=JwtVerifier(jwt_secret, leeway_s=settings.jwt_leeway_s),
        accounts=MongoAccountDirectory(db[USERS], ttl_s=settings.account_cache_s),
        wake_scheduler=scheduler.wake,
    )
    probes = [
        HealthProbe("kafka", kafka_probe.check),
        HealthProbe("mongo", mongo_ping(mongo)),
        HealthProbe("workers", supervisor.check),
    ]
    app = build_app(
        ctx,
        lifespan=service_lifespan(SERVICE_NAME, open_resources, heap=settings.heap),
        probes=probes,
        health_timeout_s=settings.health_timeout_s,
    )
    instrument_fastapi(app, telemetry)
    return app


def build_app(
    ctx: DlqContext,
    *,
    lifespan: Any = None,
    probes: Sequence[HealthProbe] = (),
    health_timeout_s: float = 2.0,
) -> FastAPI:
    """The HTTP app over ready-made resources (``create_app`` builds the real ones; the unit
    tests pass fakes)."""
    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        lifespan=lifespan,
        description="Dead letters: stored, retried with backoff into the original trace, "
        "discarded after the last attempt. Admin API under /api/v1/dlq (role admin).",
        openapi_tags=[
            {"name": messages.TAG, "description": "Inspect, retry and discard dead letters"},
            {"name": "health", "description": "Liveness and readiness"},
        ],
    )
    app.state.dlq = ctx
    install_error_handlers(app)
    app.include_router(build_health_router(SERVICE_NAME, probes, health_timeout_s))
    app.include_router(messages.router)
    return app
