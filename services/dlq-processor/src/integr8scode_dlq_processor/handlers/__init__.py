"""The Kafka edge: what the ``dead_letter_queue`` consumer does with each message."""
