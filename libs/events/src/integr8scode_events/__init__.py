"""Integr8sCode events: envelope, topics, publisher and consumer runner."""

from integr8scode_events.settings import KafkaSettings, MongoSettings

__all__ = ["KafkaSettings", "MongoSettings"]
