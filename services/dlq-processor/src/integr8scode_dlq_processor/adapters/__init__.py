"""Mongo, Kafka and token adapters behind the Protocols of ``domain/ports.py``."""
