"""Mongo, DNS and HTTP behind the Protocols of ``domain/ports.py``."""
