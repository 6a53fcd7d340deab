"""The HTTP edge: one router per concern, wired in ``app.py``."""
