"""Composition root of event-replay: builds the resources, wires the archiver, the session pool
and the admin API, owns the lifespan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry.trace import SpanContext

from integr8scode_auth import COLLECTION as USERS
from integr8scode_auth import JwtVerifier, MongoAccountDirectory
from integr8scode_event_replay import SERVICE_NAME, __version__
from integr8scode_event_replay.adapters.event_store import COLLECTION as EVENTS_COLLECTION
from integr8scode_event_replay.adapters.event_store import EventStoreWriter
from integr8scode_event_replay.adapters.kafka_replay import KafkaReplayPublisher
from integr8scode_event_replay.adapters.mongo_events import MongoEventSource
from integr8scode_event_replay.adapters.mongo_sessions import MongoControlStore, MongoSessionStore
from integr8scode_event_replay.config import Settings
from integr8scode_event_replay.domain.sessions import ReplaySession
from integr8scode_event_replay.domain.spec import SpecLimits
from integr8scode_event_replay.errors import install_error_handlers
from integr8scode_event_replay.handlers.archiver import Archiver
from integr8scode_event_replay.pool import SessionPool
from integr8scode_event_replay.routes.dependencies import ReplayContext
from integr8scode_event_replay.routes.sessions import router as sessions_router
from integr8scode_event_replay.runner import RunnerDeps, RunPolicy, SessionRunner, utcnow
from integr8scode_event_replay.service import ReplayService
from integr8scode_event_replay.slots import Slots
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    KafkaProbe,
    create_missing_topics,
)
from integr8scode_events.topics import DOMAIN_TOPICS
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

ARCHIVE_SPAN = "event_store.archive"


def build_app(
    ctx: ReplayContext,
    *,
    lifespan: Any = None,
    probes: Sequence[HealthProbe] = (),
    health_timeout_s: float = 2.0,
) -> FastAPI:
    """The HTTP app over ready-made resources (``create_app`` builds the real ones; the unit
    tests pass fakes)."""
    app = FastAPI(title=SERVICE_NAME, version=__version__, lifespan=lifespan)
    app.state.replay = ctx
    install_error_handlers(app)
    app.include_router(build_health_router(SERVICE_NAME, probes, health_timeout_s))
    app.include_router(sessions_router)
    return app


def create_app(settings: Settings) -> FastAPI:
    """Build the app and every resource it owns; nothing connects before the lifespan starts.
    Refuses (``InsecureConfigError``) to build without a token secret outside local
    environments."""
    jwt_secret = settings.resolve_jwt_secret()
    telemetry = init_telemetry(settings.telemetry, SERVICE_NAME, __version__)
    tracer = telemetry.tracer_provider.get_tracer(SERVICE_NAME)
    mongo = mongo_client(settings.mongo)
    db = mongo[settings.mongo.database]
    kafka_probe = KafkaProbe(settings.kafka, client_id=SERVICE_NAME)
    publisher = EventPublisher(
        settings.kafka, SERVICE_NAME, tracer_provider=telemetry.tracer_provider
    )
    writer = EventStoreWriter.in_database(
        mongo, settings.mongo.database, tracer_provider=telemetry.tracer_provider
    )
    archiver = Archiver(writer, meter=telemetry.meter_provider.get_meter(SERVICE_NAME))
    consumer = ConsumerRunner(
        settings=settings.kafka,
        group_id=settings.archiver.group,
        topics=[topic.name for topic in DOMAIN_TOPICS],
        publisher=publisher,
        batch_handler=archiver.handle_batch,
        # The archiver must not lose events: a batch that can't be stored (Mongo down) is
        # retried until it is, rather than dead-lettered.
        dead_letter_topic=None,
        span_name=ARCHIVE_SPAN,
        tracer_provider=telemetry.tracer_provider,
        max_batch=settings.archiver.max_batch,
        fetch_min_bytes=settings.archiver.fetch_min_bytes,
        fetch_max_wait_ms=settings.archiver.fetch_max_wait_ms,
    )

    replay = settings.replay
    sessions = MongoSessionStore(db)
    controls = MongoControlStore(db)
    events = MongoEventSource(db[EVENTS_COLLECTION])
    deps = RunnerDeps(
        sessions=sessions,
        controls=controls,
        events=events,
        publisher=KafkaReplayPublisher(publisher),
        slots=Slots(replay.max_concurrent_sessions),
        policy=RunPolicy(
            batch_size=replay.batch_size,
            max_wait_s=replay.max_wait_s,
            publish_attempts=replay.publish_attempts,
            max_consecutive_failures=replay.max_consecutive_failures,
            progress_interval_s=replay.progress_interval_s,
            control_poll_s=replay.control_poll_s,
            lease_s=replay.lease_s,
            publish_window=replay.publish_window,
        ),
        tracer=tracer,
        instance_id=settings.instance_id,
        clock=utcnow,
    )

    def new_runner(session: ReplaySession, creator: SpanContext | None) -> SessionRunner:
        return SessionRunner(session, deps, creator=creator)

    pool = SessionPool(
        sessions=sessions,
        runner_factory=new_runner,
        instance_id=settings.instance_id,
        lease_s=replay.lease_s,
        recovery_interval_s=replay.recovery_interval_s,
        clock=utcnow,
    )
    service = ReplayService(
        sessions=sessions,
        controls=controls,
        events=events,
        pool=pool,
        limits=SpecLimits(
            default_max_events=replay.default_max_events,
            max_events_limit=replay.max_events_limit,
            max_speed_factor=replay.max_speed_factor,
        ),
        preview_size=replay.preview_size,
        dry_run_budget_s=replay.dry_run_budget_s,
        lease_s=replay.lease_s,
        instance_id=settings.instance_id,
        control_ack_timeout_s=replay.control_ack_timeout_s,
        tracer_provider=telemetry.tracer_provider,
        clock=utcnow,
    )
    supervisor = Supervisor()

    async def prepare_then_archive() -> None:
        # Retried by the supervisor until Kafka and Mongo answer. Index creation is
        # housekeeping: untraced, not a root trace per index.
        with untraced():
            await create_missing_topics(settings.kafka, SERVICE_NAME)
            await writer.ensure_indexes()
            await publisher.start()
        await consumer.run()

    async def prepare_then_recover() -> None:
        with untraced():
            await sessions.ensure_indexes()
        await pool.run()

    supervisor.add("archiver", prepare_then_archive, on_stop=consumer.stop)
    supervisor.add("sessions", prepare_then_recover, on_stop=pool.stop)

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
        stack.close_with("sessions in flight", lambda: pool.drain(replay.stop_grace_s))
        stack.close_with("archiver", consumer.stop)
        stack.close_with("session pool", pool.stop)

    probes = [
        HealthProbe("kafka", kafka_probe.check),
        HealthProbe("mongo", mongo_ping(mongo)),
        HealthProbe("workers", supervisor.check),
    ]
    app = build_app(
        ReplayContext(
            service=service,
            tokens=JwtVerifier(jwt_secret, leeway_s=settings.token_leeway_s),
            accounts=MongoAccountDirectory(db[USERS], ttl_s=settings.account_cache_s),
        ),
        lifespan=service_lifespan(SERVICE_NAME, open_resources, heap=settings.heap),
        probes=probes,
        health_timeout_s=settings.health_timeout_s,
    )
    instrument_fastapi(app, telemetry)
    return app
