"""How a dead letter's bytes are kept for people to read, and what is masked when shown.

The exact bytes are stored as they came (a retry re-publishes them unchanged); ``payload`` is a
readable copy: parsed JSON when the value is UTF-8 JSON that Mongo can store as is, the text
when it is other UTF-8, base64 otherwise.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import re
from collections.abc import Mapping
from typing import Any

_INT64 = (-(2**63), 2**63 - 1)
_MAX_DEPTH = 64
# Field and header names whose values are credentials; masked in API responses.
_SECRET_NAME = re.compile(r"secret|token|passw|authori[sz]ation|api[-_]?key|signature|cookie", re.I)
MASK = "***"


class PayloadEncoding(enum.StrEnum):
    JSON = "json"
    TEXT = "text"
    BASE64 = "base64"
    NONE = "none"


def readable_payload(value: bytes | None) -> tuple[Any, PayloadEncoding]:
    """The readable copy of ``value`` and how it is encoded."""
    if value is None:
        return None, PayloadEncoding.NONE
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), PayloadEncoding.BASE64
    try:
        parsed = json.loads(text)
    except ValueError:
        return text, PayloadEncoding.TEXT
    if _storable(parsed, 0):
        return parsed, PayloadEncoding.JSON
    return text, PayloadEncoding.TEXT


def _storable(value: Any, depth: int) -> bool:
    """Mongo refuses keys starting with ``$`` or containing ``.`` and integers beyond int64;
    NaN and Infinity can't be shown as JSON."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_storable_key(k) for k in value) and all(
            _storable(v, depth + 1) for v in value.values()
        )
    if isinstance(value, list):
        return all(_storable(v, depth + 1) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _INT64[0] <= value <= _INT64[1]
    return True


def _storable_key(key: Any) -> bool:
    return isinstance(key, str) and not key.startswith("$") and "." not in key and "\x00" not in key


def readable_key(key: bytes | None) -> str | None:
    """The message key as text (base64 when it is not UTF-8)."""
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(key).decode("ascii")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON value with the values of credential-like fields replaced by ``***``."""
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and is_secret_name(k) else mask_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: MASK if is_secret_name(name) else value for name, value in headers.items()}
