"""Kafka edge of the API: lifecycle events applied to the executions it serves."""
