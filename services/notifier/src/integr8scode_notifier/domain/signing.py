"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.{body}"`` with the user's secret.

The sender puts the unix time in ``X-Integr8scode-Timestamp`` and
``sha256=<hex digest>`` in ``X-Integr8scode-Signature``. A receiver recomputes the digest over
the timestamp header, a dot and the raw body bytes exactly as received (before any JSON
parsing), compares in constant time, and rejects a timestamp further than a few minutes from
its own clock, so a captured request can't be replayed later. ``verify`` below is that
receiver, for the tests and as the reference.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Integr8scode-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_PREFIX}{digest}"


def verify(
    secret: str,
    timestamp_header: str,
    body: bytes,
    signature_header: str,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when the signature matches and the timestamp is within ``tolerance_s`` of ``now``."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)
