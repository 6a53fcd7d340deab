"""dlq-processor: Consumes `dead_letter_queue`; stores dead letters, schedules retries with
backoff, re-publishes with trace context, discards; admin API.
"""

SERVICE_NAME = "dlq-processor"
__version__ = "0.1.0"
