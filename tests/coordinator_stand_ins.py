"""Stand-ins for the parts a coordinator integration test does not exercise: the sandbox
(every run completes at once with a fixed result) and Kafka (events are kept as the broker
would take them). The stores, slots and scheduler around them are the real ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integr8scode_coordinator.sandbox import Runtime, SandboxRequest, SandboxResult
from integr8scode_events import EventEnvelope, PublishedRecord

if TYPE_CHECKING:
    import asyncio


class InstantRunner:
    name = "stand-in"

    def runtimes(self) -> list[Runtime]:
        return [Runtime("python", ["3.11"], "3.11")]

    async def run(self, request: SandboxRequest, cancel: asyncio.Event) -> SandboxResult:
        return SandboxResult(
            outcome="completed",
            exit_code=0,
            signal=None,
            stdout="45\n",
            stderr="",
            stdout_truncated=False,
            stderr_truncated=False,
            cpu_time_ms=1.0,
            wall_time_ms=2.0,
            peak_memory_kb=1024,
            error=None,
        )


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []

    async def publish(self, event: EventEnvelope) -> PublishedRecord:
        self.events.append(event)
        return PublishedRecord(topic=event.topic.name, partition=0, offset=len(self.events))
