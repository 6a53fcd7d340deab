"""Mongo, Kafka and token adapters behind the domain's Protocols."""
