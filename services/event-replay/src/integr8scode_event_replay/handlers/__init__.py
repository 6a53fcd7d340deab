"""Kafka-facing handlers of event-replay."""
