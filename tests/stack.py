"""Where the local stack listens, as the tests see it (same environment variables as the stack)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    mongo_url: str
    redis_url: str
    otlp_grpc: str
    otlp_http: str
    jaeger_query: str
    collector_health: str
    collector_metrics: str
    services: dict[str, str]


def local_stack() -> Stack:
    """Endpoints of the running stack; overridable like the stack itself."""
    return Stack(
        kafka_bootstrap=f"127.0.0.1:{_port('KAFKA_PORT', 9092)}",
        mongo_url=f"mongodb://127.0.0.1:{_port('MONGO_PORT', 27017)}",
        redis_url=f"redis://127.0.0.1:{_port('REDIS_PORT', 6379)}/0",
        otlp_grpc=f"http://127.0.0.1:{_port('OTLP_GRPC_PORT', 4317)}",
        otlp_http=f"http://127.0.0.1:{_port('OTLP_HTTP_PORT', 4318)}",
        jaeger_query=f"http://127.0.0.1:{_port('JAEGER_QUERY_PORT', 16686)}",
        collector_health=f"http://127.0.0.1:{_port('COLLECTOR_HEALTH_PORT', 13133)}",
        collector_metrics=f"http://127.0.0.1:{_port('COLLECTOR_PROM_PORT', 8889)}/metrics",
        services={
            "integr8scode-backend": f"http://127.0.0.1:{_port('API_PORT', 8000)}",
            "execution-coordinator": f"http://127.0.0.1:{_port('COORDINATOR_PORT', 8001)}",
            "dlq-processor": f"http://127.0.0.1:{_port('DLQ_PORT', 8002)}",
            "event-replay": f"http://127.0.0.1:{_port('REPLAY_PORT', 8003)}",
            "notifier": f"http://127.0.0.1:{_port('NOTIFIER_PORT', 8004)}",
        },
    )
