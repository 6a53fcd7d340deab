"""Composition root of notifier: builds the resources, wires the handlers, owns the lifespan."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

from integr8scode_events import ProducerInfo
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    KafkaProbe,
    RetryPolicy,
    create_missing_topics,
)
from integr8scode_events.topics import EXECUTION_EVENTS
from integr8scode_mongo import mongo_client, mongo_ping
from integr8scode_notifier import SERVICE_NAME, __version__
from integr8scode_notifier.adapters import mongo_deliveries, mongo_executions, mongo_settings
from integr8scode_notifier.adapters.address_guard import AddressGuard
from integr8scode_notifier.adapters.mongo_deliveries import MongoDeliveryStore
from integr8scode_notifier.adapters.mongo_executions import MongoExecutionSource
from integr8scode_notifier.adapters.mongo_settings import MongoSettingsSource
from integr8scode_notifier.adapters.slack import SlackSender, redact_for_span
from integr8scode_notifier.adapters.webhook import WebhookSender
from integr8scode_notifier.config import Settings
from integr8scode_notifier.delivery import DeliveryPolicy, Dispatcher
from integr8scode_notifier.domain.addresses import AddressPolicy
from integr8scode_notifier.domain.errors import DeliveryFailedError
from integr8scode_notifier.domain.retry import Backoff
from integr8scode_notifier.handlers.terminal import TerminalEventHandlers
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

USER_AGENT = f"integr8scode-notifier/{__version__}"


def create_app(settings: Settings) -> FastAPI:
    """Build the app and every resource it owns; nothing connects before the lifespan starts."""
    # Refuses a missing key ring outside local environments, before anything else is built.
    secret_box = SecretBox(settings.secrets.key_ring(settings.telemetry.environment))
    telemetry = init_telemetry(settings.telemetry, SERVICE_NAME, __version__)
    # Slack goes through aiohttp: its client spans, on this process's provider, with the
    # webhook's secret path cut from the URL. Installed before the session exists.
    aiohttp_instrumentor = AioHttpClientInstrumentor()
    instrumented_aiohttp = (
        settings.telemetry.tracing_enabled
        and not aiohttp_instrumentor.is_instrumented_by_opentelemetry
    )
    if instrumented_aiohttp:
        aiohttp_instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, url_filter=redact_for_span
        )
    mongo = mongo_client(settings.mongo)
    db = mongo[settings.mongo.database]
    kafka_probe = KafkaProbe(settings.kafka, client_id=SERVICE_NAME)
    publisher = EventPublisher(
        settings.kafka, SERVICE_NAME, tracer_provider=telemetry.tracer_provider
    )
    guard = AddressGuard(
        AddressPolicy(
            allow_loopback=settings.allow_loopback_targets,
            allow_private=settings.allow_private_targets,
        ),
        timeout_s=settings.resolve_timeout_s,
    )
    webhook = WebhookSender(
        guard,
        timeout_s=settings.http_timeout_s,
        user_agent=USER_AGENT,
        propagate_trace_context=settings.propagate_trace_context,
    )
    slack = SlackSender(
        guard,
        timeout_s=settings.http_timeout_s,
        user_agent=USER_AGENT,
        propagate_trace_context=settings.propagate_trace_context,
    )
    store = MongoDeliveryStore(db[mongo_deliveries.COLLECTION])
    meter = telemetry.meter_provider.get_meter(SERVICE_NAME, __version__)
    dispatcher = Dispatcher(
        settings=MongoSettingsSource(db[mongo_settings.COLLECTION], secret_box),
        executions=MongoExecutionSource(db[mongo_executions.COLLECTION]),
        store=store,
        senders=[webhook, slack],
        publisher=publisher,
        producer=ProducerInfo(service=SERVICE_NAME, version=__version__),
        public_base_url=settings.public_base_url,
        policy=DeliveryPolicy(
            attempts=settings.delivery_attempts,
            backoff=Backoff(initial_s=settings.backoff_initial_s, max_s=settings.backoff_max_s),
        ),
        tracer=telemetry.tracer_provider.get_tracer(SERVICE_NAME),
        deliveries_counter=meter.create_counter(
            "notifier.deliveries",
            unit="{delivery}",
            description="Finished delivery attempts per channel and outcome status.",
        ),
    )
    consumer = ConsumerRunner(
        settings=settings.kafka,
        group_id=settings.consumer_group,
        topics=[EXECUTION_EVENTS.name],
        publisher=publisher,
        handlers=TerminalEventHandlers(dispatcher).registry(),
        # A channel that still fails after its own retries goes to the dead-letter queue at
        # once: the runner's retries would multiply the delivery attempts. Other errors (Mongo
        # or Kafka unavailable) keep the runner's retries.
        retry=RetryPolicy(non_retryable=(DeliveryFailedError,)),
        tracer_provider=telemetry.tracer_provider,
        # Deliveries wait on other people's servers: a receiver that hangs or keeps failing
        # holds up only its partition, not every user's notifications.
        partition_concurrency=True,
    )
    supervisor = Supervisor()

    async def prepare_then_consume() -> None:
        # Retried by the supervisor until Kafka and Mongo answer. Index creation is
        # housekeeping: untraced, not a root trace per index.
        with untraced():
            await create_missing_topics(settings.kafka, SERVICE_NAME)
            await store.ensure_indexes()
            await publisher.start()
        await consumer.run()

    supervisor.add("consumer", prepare_then_consume, on_stop=consumer.stop)

    async def open_resources(stack: ResourceStack) -> None:
        # Each close registered as its resource opens; they run in reverse at shutdown, the
        # telemetry flush last, and one that fails skips none of the others.
        stack.close_with("telemetry", telemetry.shutdown)
        if instrumented_aiohttp:
            stack.close_with("aiohttp instrumentation", aiohttp_instrumentor.uninstrument)
        # The driver's endSessions: no root trace at shutdown.
        stack.close_with("mongo", mongo.close, untraced_close=True)
        stack.close_with("kafka probe", kafka_probe.close)
        await slack.start()
        stack.close_with("slack", slack.close)
        stack.close_with("publisher", publisher.stop)
        supervisor.start()
        stack.close_with("workers", supervisor.stop)
        stack.close_with("consumer", consumer.stop)

    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        lifespan=service_lifespan(SERVICE_NAME, open_resources, heap=settings.heap),
    )
    probes = [
        HealthProbe("kafka", kafka_probe.check),
        HealthProbe("mongo", mongo_ping(mongo)),
        HealthProbe("workers", supervisor.check),
    ]
    app.include_router(build_health_router(SERVICE_NAME, probes, settings.health_timeout_s))
    instrument_fastapi(app, telemetry)
    return app
