"""Composition root of execution-coordinator: builds the resources, wires the handlers and the
scheduler, owns the lifespan."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from integr8scode_coordinator import SERVICE_NAME, __version__
from integr8scode_coordinator.adapters.mongo_results import MongoResultStore
from integr8scode_coordinator.adapters.mongo_runtimes import MongoRuntimeCatalog
from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore
from integr8scode_coordinator.adapters.mongo_slots import MongoSlotPool
from integr8scode_coordinator.config import Settings
from integr8scode_coordinator.handlers.requests import RequestHandlers
from integr8scode_coordinator.orchestrator import ExecutionSaga, RunPolicy
from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner
from integr8scode_coordinator.scheduler import Scheduler
from integr8scode_events import ProducerInfo
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    KafkaProbe,
    create_missing_topics,
)
from integr8scode_events.topics import EXECUTION_REQUESTS
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


def create_app(settings: Settings) -> FastAPI:
    """Build the app and every resource it owns; nothing connects before the lifespan starts."""
    telemetry = init_telemetry(settings.telemetry, SERVICE_NAME, __version__)
    mongo = mongo_client(settings.mongo)
    db = mongo[settings.mongo.database]
    kafka_probe = KafkaProbe(settings.kafka, client_id=SERVICE_NAME)
    publisher = EventPublisher(
        settings.kafka, SERVICE_NAME, tracer_provider=telemetry.tracer_provider
    )
    runner = BubblewrapRunner.detect(
        tracer_provider=telemetry.tracer_provider, compile_limits=settings.compile_limits()
    )
    store = MongoSagaStore(db["sagas"])
    slots = MongoSlotPool(db["slots"], size=settings.global_slots)
    runtimes = MongoRuntimeCatalog(db["runtimes"])
    policy = RunPolicy(
        max_timeout_s=settings.max_timeout_s,
        max_memory_mb=settings.max_memory_mb,
        max_output_bytes=settings.max_output_bytes,
        max_cpu_time_s=settings.max_cpu_time_s,
        max_processes=settings.max_processes,
        default_processes=settings.default_processes,
        lease=timedelta(seconds=settings.lease_s),
        per_user=settings.per_user_slots,
        store_retry_s=settings.store_retry_s,
    )
    saga = ExecutionSaga(
        store=store,
        slots=slots,
        results=MongoResultStore(db["execution_results"]),
        runner=runner,
        publisher=publisher,
        producer=ProducerInfo(service=SERVICE_NAME, version=__version__),
        policy=policy,
        instance_id=settings.instance_id,
        tracer=telemetry.tracer_provider.get_tracer(SERVICE_NAME),
    )
    scheduler = Scheduler(
        saga=saga,
        store=store,
        slots=slots,
        policy=policy,
        local_capacity=settings.local_capacity,
        tracer=telemetry.tracer_provider.get_tracer(SERVICE_NAME),
    )
    consumer = ConsumerRunner(
        settings=settings.kafka,
        group_id=settings.consumer_group,
        topics=[EXECUTION_REQUESTS.name],
        publisher=publisher,
        handlers=RequestHandlers(saga, scheduler, store).registry(),
        tracer_provider=telemetry.tracer_provider,
    )
    supervisor = Supervisor()

    compilers_checked = False
    # Ready only once the runtimes are published: until then the api refuses every language
    # ("no coordinator has registered"), so a caller that waited for readiness (make up's
    # demo, an orchestrator's rollout) would be turned away. The first preparation on a fresh
    # store (the compilers' check, new indexes) takes seconds after the server answers.
    runtimes_published = False

    async def prepare_then_consume() -> None:
        # Retried by the supervisor until Kafka and Mongo answer. Preparing is housekeeping
        # (index creation, the slot documents, the compilers' check): untraced, not a root
        # trace per call.
        nonlocal compilers_checked, runtimes_published
        with untraced():
            if not compilers_checked:  # before the runtimes are published: what works
                await runner.check_compilers()
                compilers_checked = True
            await create_missing_topics(settings.kafka, SERVICE_NAME)
            await store.ensure_indexes()
            await slots.ensure_slots()
            await runtimes.publish(
                runner.runtimes(),
                runner.name,
                settings.instance_id,
                compile_limits=settings.compile_limits(),
            )
            runtimes_published = True
            await publisher.start()
        await consumer.run()

    async def runtimes_ready() -> bool:
        if not runtimes_published:
            raise RuntimeError("runtimes not published yet (checking compilers, topics, indexes)")
        return True

    supervisor.add("consumer", prepare_then_consume, on_stop=consumer.stop)
    supervisor.add("scheduler", scheduler.run, on_stop=scheduler.stop)

    async def open_resources(stack: ResourceStack) -> None:
        # Each close registered as its resource opens; they run in reverse at shutdown, the
        # telemetry flush last, and one that fails skips none of the others.
        stack.close_with("telemetry", telemetry.shutdown)
        # The driver's endSessions: no root trace at shutdown.
        stack.close_with("mongo", mongo.close, untraced_close=True)
        # The sagas' deferred deletes, after the runs' drain and before the client goes.
        stack.close_with("saga deletes", store.close)
        stack.close_with("kafka probe", kafka_probe.close)
        stack.close_with("publisher", publisher.stop)
        supervisor.start()
        stack.close_with("workers", supervisor.stop)
        stack.close_with("sagas in flight", lambda: scheduler.drain(settings.drain_grace_s))
        stack.close_with("consumer", consumer.stop)
        stack.close_with("scheduler", scheduler.stop)

    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        lifespan=service_lifespan(SERVICE_NAME, open_resources, heap=settings.heap),
    )
    probes = [
        HealthProbe("kafka", kafka_probe.check),
        HealthProbe("mongo", mongo_ping(mongo)),
        HealthProbe("workers", supervisor.check),
        HealthProbe("runtimes", runtimes_ready),
    ]
    app.include_router(build_health_router(SERVICE_NAME, probes, settings.health_timeout_s))
    instrument_fastapi(app, telemetry)
    return app
