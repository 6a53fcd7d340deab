"""Composition root of event-replay: builds the resources, wires the routes, owns the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pymongo import AsyncMongoClient

from integr8scode_event_replay import SERVICE_NAME, __version__
from integr8scode_event_replay.config import Settings
from integr8scode_events.probes import KafkaProbe, mongo_reachable
from integr8scode_telemetry import (
    HealthProbe,
    build_health_router,
    init_telemetry,
    instrument_fastapi,
)


def create_app(settings: Settings) -> FastAPI:
    """Build the app and every resource it owns; nothing connects before the lifespan starts."""
    telemetry = init_telemetry(settings.telemetry, SERVICE_NAME, __version__)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo.url,
        serverSelectionTimeoutMS=settings.mongo.server_selection_timeout_ms,
        connect=False,
    )
    kafka_probe = KafkaProbe(settings.kafka, client_id=SERVICE_NAME)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await kafka_probe.close()
            await mongo.close()
            telemetry.shutdown()

    app = FastAPI(title=SERVICE_NAME, version=__version__, lifespan=lifespan)
    probes = [
        HealthProbe("kafka", kafka_probe.check),
        HealthProbe("mongo", lambda: mongo_reachable(mongo)),
    ]
    app.include_router(build_health_router(SERVICE_NAME, probes, settings.health_timeout_s))
    instrument_fastapi(app, telemetry)
    return app
