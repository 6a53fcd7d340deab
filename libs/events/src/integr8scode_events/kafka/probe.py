"""The readiness check of the broker (the Mongo one is libs/mongo's ``mongo_ping``).

It connects lazily: a service must start (and answer ``/health/live``) while a dependency is
down, and report it through ``/health/ready`` until it is back.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from integr8scode_events.kafka.settings import KafkaSettings


class KafkaProbe:
    """Answers whether the Kafka cluster serves metadata and has an active controller."""

    def __init__(self, settings: KafkaSettings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> bool:
        """One metadata round trip; (re)connects when needed."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._settings.bootstrap_servers,
                client_id=f"{self._client_id}-health",
                request_timeout_ms=self._settings.request_timeout_ms,
            )
            await admin.start()
            self._admin = admin
        try:
            cluster = await self._admin.describe_cluster()
        except Exception:
            await self.close()
            raise
        return cluster.get("controller_id") is not None

    async def close(self) -> None:
        """Release the admin connection, if one was opened."""
        if self._admin is not None:
            admin, self._admin = self._admin, None
            await admin.close()
