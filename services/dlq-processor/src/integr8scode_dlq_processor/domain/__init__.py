"""The dead-letter domain: records and their state machine, retry policies, and the services
that drive them through the ports in ``ports.py`` (no infrastructure imports here)."""
