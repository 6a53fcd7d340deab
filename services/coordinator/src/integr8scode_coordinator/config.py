"""Settings of execution-coordinator: the lib fragments plus its own (prefix ``COORDINATOR_``)."""

from __future__ import annotations

import os
import socket
import uuid

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_coordinator.sandbox import SandboxLimits
from integr8scode_events.kafka import KafkaSettings
from integr8scode_mongo import MongoSettings
from integr8scode_telemetry import HeapSettings, TelemetrySettings


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Settings(BaseSettings):
    """Everything the service reads from its environment, read once in ``__main__``."""

    model_config = SettingsConfigDict(env_prefix="COORDINATOR_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8001, ge=0, le=65535)
    log_level: str = Field(default="INFO")
    health_timeout_s: float = Field(default=2.0, gt=0, description="Per-probe readiness timeout.")

    instance_id: str = Field(default_factory=_instance_id, description="Owner id in leases.")
    consumer_group: str = Field(default="execution-coordinator")
    global_slots: int = Field(
        default=8, ge=1, description="Runs at once across every coordinator instance."
    )
    per_user_slots: int = Field(default=4, ge=1, description="Runs at once per user.")
    local_capacity: int = Field(default=4, ge=1, description="Runs at once in this instance.")
    max_timeout_s: float = Field(default=30.0, gt=0)
    max_memory_mb: int = Field(default=512, ge=16)
    max_output_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Output kept per stream: the maximum a request's max_output_kb may ask "
        "for, and the default when it names none.",
    )
    max_cpu_time_s: float = Field(default=30.0, gt=0, description="Most CPU a request may ask.")
    max_processes: int = Field(default=128, ge=1, description="Most processes a request may ask.")
    default_processes: int = Field(
        default=64, ge=1, description="Process limit of a request that names none."
    )
    compile_timeout_s: float = Field(
        default=20.0, gt=0, description="Wall-clock limit of a compiled language's compile phase."
    )
    compile_cpu_time_s: float = Field(default=30.0, gt=0, description="CPU of a compile phase.")
    compile_memory_mb: int = Field(
        default=768, ge=64, description="Memory of a compile phase (its own cgroup)."
    )
    compile_processes: int = Field(
        default=256, ge=8, description="Processes and threads of a compile phase (go, javac)."
    )
    compile_output_bytes: int = Field(
        default=65_536, ge=1024, description="Compiler output kept per stream."
    )
    compile_file_size_mb: int = Field(
        default=64, ge=1, description="Largest file a compile phase writes (the program built)."
    )
    lease_s: float = Field(default=15.0, gt=1, description="Run lease; renewed every third.")
    store_retry_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a finished run retries storing its result while Mongo is away.",
    )
    drain_grace_s: float = Field(
        default=20.0, ge=0, description="How long runs may finish at shutdown."
    )

    def compile_limits(self) -> SandboxLimits:
        """The compile phase's limits; the run phase's come from each request."""
        return SandboxLimits(
            timeout_s=self.compile_timeout_s,
            memory_mb=self.compile_memory_mb,
            cpu_time_s=self.compile_cpu_time_s,
            max_output_bytes=self.compile_output_bytes,
            max_processes=self.compile_processes,
            max_file_size_mb=self.compile_file_size_mb,
            max_open_files=1024,
            tmpfs_size_mb=max(64, self.compile_file_size_mb * 4),
        )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    heap: HeapSettings = Field(default_factory=HeapSettings)
