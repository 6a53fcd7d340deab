"""Replay sessions as plain models and rules: no Mongo, Kafka or HTTP in here."""
