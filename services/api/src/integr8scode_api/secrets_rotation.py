"""``integr8scode-api rotate-secrets``: re-seal every stored credential under the current key.

Run it after every api and notifier has the new key ring (services/api/README.md, "Credentials
at rest"); it is idempotent, so running it twice, or while the API serves, is safe. Documents
written before sealing existed (plaintext) are sealed by it too.
"""

from __future__ import annotations

from integr8scode_api.adapters.mongo_notifications import (
    SETTINGS_COLLECTION,
    MongoNotificationSettings,
    ResealReport,
)
from integr8scode_api.config import Settings
from integr8scode_mongo import mongo_client
from integr8scode_secrets import SecretBox


async def rotate_secrets(settings: Settings) -> ResealReport:
    """Re-seal ``notification_settings`` with the configured ring (``KeyRingError`` when there
    is none outside a local environment; ``DependencyUnavailableError`` when Mongo doesn't
    answer)."""
    box = SecretBox(settings.secrets.key_ring(settings.environment))
    mongo = mongo_client(settings.mongo)
    try:
        store = MongoNotificationSettings(mongo[settings.mongo.database][SETTINGS_COLLECTION], box)
        return await store.reseal_all()
    finally:
        await mongo.close()


def describe(report: ResealReport) -> list[str]:
    """The command's output lines (user ids and reasons; never a value)."""
    lines = [
        f"re-sealed under key {report.key_id!r}: {report.resealed}; "
        f"already current: {report.current}; "
        f"changed meanwhile (already current): {report.changed_meanwhile}; "
        f"failed: {len(report.failed)}"
    ]
    lines += [f"  user {user_id}: {reason}" for user_id, reason in report.failed]
    return lines
