"""Integr8sCode's Python client: ``AsyncClient`` and ``Client`` (blocking) of the public API,
their answers as pydantic models, and one exception hierarchy rooted at ``ApiError``."""

from integr8scode_client.async_client import DEFAULT_URL, AsyncClient
from integr8scode_client.errors import (
    ApiError,
    Conflict,
    Invalid,
    NotFound,
    NotSupported,
    RateLimited,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from integr8scode_client.execute_request import ExecuteRequest, Limits, WorkFile
from integr8scode_client.models import (
    BatchItem,
    CancelAccepted,
    CompileResult,
    Execution,
    ExecutionPage,
    NotificationSettings,
    ResourceUsage,
    Runtime,
    StatusEvent,
    Submitted,
    Timeline,
    TimelinePhase,
)
from integr8scode_client.sync_client import Client

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "BatchItem",
    "CancelAccepted",
    "Client",
    "CompileResult",
    "Conflict",
    "ExecuteRequest",
    "Execution",
    "ExecutionPage",
    "Invalid",
    "Limits",
    "NotFound",
    "NotSupported",
    "NotificationSettings",
    "RateLimited",
    "ResourceUsage",
    "Runtime",
    "StatusEvent",
    "Submitted",
    "Timeline",
    "TimelinePhase",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "WorkFile",
]
