"""The Kafka edge: which events the notifier handles."""
