"""Attribute names of the trace contract (DESIGN.md §5), in one place for every service."""

from __future__ import annotations

USER_ID = "user.id"
CLIENT_ADDRESS = "client.address"

EXECUTION_ID = "execution.id"
EXECUTION_LANGUAGE = "execution.language"
EXECUTION_LANGUAGE_VERSION = "execution.language_version"
EXECUTION_SCRIPT_LENGTH = "execution.script_length"
EXECUTION_STATUS = "execution.status"

RATE_LIMIT_ALLOWED = "rate_limit.allowed"
RATE_LIMIT_LIMIT = "rate_limit.limit"
RATE_LIMIT_REMAINING = "rate_limit.remaining"
RATE_LIMIT_ALGORITHM = "rate_limit.algorithm"
RATE_LIMIT_RULE = "rate_limit.rule"

EVENT_ID = "event.id"
EVENT_TYPE = "event.type"
EVENTS_BATCH_COUNT = "events.batch.count"

SAGA_NAME = "saga.name"
SAGA_ID = "saga.id"
SAGA_STEP = "saga.step"

SANDBOX_RUNNER = "sandbox.runner"
SANDBOX_TIMEOUT_S = "sandbox.limits.timeout_s"
SANDBOX_MEMORY_MB = "sandbox.limits.memory_mb"
SANDBOX_EXIT_CODE = "sandbox.exit_code"

NOTIFICATION_ID = "notification.id"
NOTIFICATION_CHANNEL = "notification.channel"

REPLAY_SESSION_ID = "replay.session.id"

# OpenTelemetry's general error attribute: the class of error on a span whose status is ERROR.
ERROR_TYPE = "error.type"

# The HTTP edge's server span, when it did not continue an untrusted caller's trace: the
# caller's trace id (searchable; the span also links to the caller's span context), and why a
# link exists.
CALLER_TRACE_ID = "integr8scode.caller.trace_id"
LINK_REASON = "integr8scode.link.reason"
