"""event-replay: Archives every domain event into the event store (batched); replays selected
events back into Kafka; admin API.
"""

SERVICE_NAME = "event-replay"
__version__ = "0.1.0"
