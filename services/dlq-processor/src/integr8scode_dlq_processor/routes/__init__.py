"""The HTTP edge: the admin API under ``/api/v1/dlq``."""
