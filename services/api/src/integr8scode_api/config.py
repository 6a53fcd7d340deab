"""Settings of integr8scode-backend: the lib fragments plus what is its own. Env prefix ``API_``."""

from __future__ import annotations

import logging
import secrets

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_api.domain.execution_limits import (
    LanguageLimits,
    LimitPolicy,
    LimitTable,
    ResolvedLimits,
)
from integr8scode_api.domain.execution_request import ExecutionPolicy, InputPolicy
from integr8scode_api.domain.notifications import NotificationPolicy
from integr8scode_api.domain.rate_limit import Algorithm, RateLimitRule, Scope
from integr8scode_api.domain.users import PASSWORD_MAX, PASSWORD_MIN
from integr8scode_events.kafka import KafkaSettings
from integr8scode_mongo import MongoSettings
from integr8scode_secrets import SecretsSettings
from integr8scode_telemetry import HeapSettings, TelemetrySettings

log = logging.getLogger(__name__)

DEFAULT_ADMIN_PASSWORD = "admin-change-me"  # noqa: S105 - the documented local default
# Where insecure defaults are tolerated (with a warning); anywhere else they stop the start.
LOCAL_ENVIRONMENTS = frozenset({"local", "test", "ci"})
JWT_SECRET_MIN = 32  # HS256 wants a key at least as long as its hash


class InsecureConfigError(RuntimeError):
    """A setting left at its local default where it must be set (outside a local environment)."""


class RedisSettings(BaseSettings):
    """How to reach Redis (rate limits, SSE fan-out). Env prefix ``REDIS_``."""

    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")

    url: str = Field(default="redis://127.0.0.1:6379/0")


class AuthSettings(BaseSettings):
    """Tokens, the bootstrap admin and password hashing. Env prefix ``API_``."""

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    jwt_secret: SecretStr | None = Field(
        default=None,
        description=f"HS256 key, at least {JWT_SECRET_MIN} characters, shared by every service "
        "that verifies tokens. Unset: a random one per process (local environments only).",
    )
    access_token_ttl_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    account_cache_s: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="How long the account behind a token is cached (every authenticated "
        "request checks it): the longest another api replica keeps honouring a token after "
        "its account was disabled, demoted, deleted or logged out everywhere; the replica "
        "that made the change honours it at once (0: read it at every request).",
    )
    login_max_failures: int = Field(
        default=10, ge=1, description="Failed logins per account before it is throttled."
    )
    login_failure_window_s: float = Field(
        default=900.0, gt=0, description="Window of those failures, and how long it then waits."
    )
    admin_username: str = Field(default="admin", pattern=r"^[a-zA-Z0-9_.-]{3,32}$")
    admin_password: SecretStr = Field(
        default=SecretStr(DEFAULT_ADMIN_PASSWORD),
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
    )
    password_hash_time_cost: int = Field(default=3, ge=1, description="Argon2id iterations.")
    password_hash_memory_kib: int = Field(default=65_536, ge=1_024, description="Argon2id memory.")
    password_hash_parallelism: int = Field(default=4, ge=1, le=64)
    password_hash_concurrency: int = Field(
        default=4, ge=1, description="Hashes computed at once; more wait (bounds memory)."
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < JWT_SECRET_MIN:
            raise ValueError(f"API_JWT_SECRET must be at least {JWT_SECRET_MIN} characters")
        return value

    def resolve_jwt_secret(self, environment: str) -> str:
        """The configured secret; in a local environment without one, a random one per process
        (tokens then die with the process, and two processes don't accept each other's)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if environment not in LOCAL_ENVIRONMENTS:
            raise InsecureConfigError(f"API_JWT_SECRET must be set in environment '{environment}'")
        log.warning(
            "API_JWT_SECRET is not set: using a random secret for this process; tokens won't "
            "survive a restart and other services can't verify them"
        )
        return secrets.token_urlsafe(48)

    def check_admin_password(self, environment: str) -> None:
        """Warn about the default admin password locally; refuse it anywhere else."""
        if self.admin_password.get_secret_value() != DEFAULT_ADMIN_PASSWORD:
            return
        if environment not in LOCAL_ENVIRONMENTS:
            raise InsecureConfigError(
                f"API_ADMIN_PASSWORD is the default; set it in environment '{environment}'"
            )
        log.warning(
            "admin account '%s' uses the default password; set API_ADMIN_PASSWORD",
            self.admin_username,
        )


class RateLimitSettings(BaseSettings):
    """Rate limiting: behaviour and the default rules. Env prefix ``API_RATE_LIMIT_``."""

    model_config = SettingsConfigDict(env_prefix="API_RATE_LIMIT_", extra="ignore")

    enabled: bool = Field(default=True)
    fail_open: bool = Field(
        default=True, description="Let requests through when Redis is down (else answer 503)."
    )
    redis_timeout_s: float = Field(default=0.5, gt=0, description="Connect/read timeout.")
    backoff_s: float = Field(
        default=1.0, ge=0, description="After a Redis failure, don't ask it again this long."
    )
    rules_cache_ttl_s: float = Field(default=2.0, ge=0)

    auth_limit: int = Field(default=20, ge=1, description="Register+login per client address.")
    auth_window_s: float = Field(default=60.0, gt=0)
    execute_capacity: int = Field(default=30, ge=1, description="Execute burst per user.")
    execute_refill_per_s: float = Field(default=10.0, gt=0)
    default_limit: int = Field(default=600, ge=1, description="Other routes, per user.")
    default_window_s: float = Field(default=60.0, gt=0)

    def default_rules(self) -> list[RateLimitRule]:
        """The rules in force until an admin overrides them."""
        return [
            RateLimitRule(
                name="auth",
                pattern="POST /api/v1/auth/*",
                limit=self.auth_limit,
                window_s=self.auth_window_s,
                algorithm=Algorithm.SLIDING_WINDOW,
                scope=Scope.CLIENT,
            ),
            RateLimitRule(
                name="execute",
                pattern="POST /api/v1/execute",
                limit=self.execute_capacity,
                window_s=self.execute_capacity / self.execute_refill_per_s,
                algorithm=Algorithm.TOKEN_BUCKET,
                scope=Scope.USER,
            ),
            RateLimitRule(
                name="default",
                pattern="* /api/v1/*",
                limit=self.default_limit,
                window_s=self.default_window_s,
                algorithm=Algorithm.SLIDING_WINDOW,
                scope=Scope.USER,
            ),
        ]


class ExecutionSettings(BaseSettings):
    """What ``POST /execute`` accepts. Env prefix ``API_EXECUTION_``. Sizes are bytes after
    base64 decoding; the limit maximums should not exceed the coordinator's
    (``COORDINATOR_MAX_*``), which refuses a request above its own."""

    model_config = SettingsConfigDict(env_prefix="API_EXECUTION_", extra="ignore")

    max_script_bytes: int = Field(default=65_536, ge=1)
    max_stdin_bytes: int = Field(default=65_536, ge=0)
    max_args: int = Field(default=64, ge=0, description="Command-line arguments per request.")
    max_arg_bytes: int = Field(default=4096, ge=1, description="Size of one argument.")
    max_files: int = Field(default=16, ge=0, le=64, description="Extra files per request.")
    max_file_bytes: int = Field(default=65_536, ge=0, description="Size of one extra file.")
    max_files_total_bytes: int = Field(
        default=262_144, ge=0, description="Size of all extra files together."
    )
    max_expected_stdout_bytes: int = Field(default=65_536, ge=0)
    max_timeout_s: float = Field(default=30.0, gt=0)
    max_memory_mb: int = Field(default=512, ge=16)
    max_cpu_time_s: float = Field(default=30.0, gt=0)
    max_processes: int = Field(default=128, ge=1)
    max_output_kb: int = Field(default=1024, ge=1)
    default_timeout_s: float = Field(default=10.0, gt=0)
    default_memory_mb: int = Field(default=128, ge=16)
    default_cpu_time_s: float = Field(default=10.0, gt=0)
    default_processes: int = Field(default=64, ge=1)
    default_output_kb: int = Field(default=1024, ge=1)
    language_limits: dict[str, LanguageLimits] = Field(
        default_factory=dict,
        description='A language\'s own defaults and maximums, JSON: {"java": {"defaults": '
        '{"memory_mb": 256}, "maximums": {"memory_mb": 1024}}}; the rest is the platform\'s.',
    )
    status_consumer_group: str = Field(
        default="integr8scode-backend-status",
        description="Consumer group applying lifecycle events to executions.",
    )
    outbox_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often requests the broker didn't confirm in time are re-published.",
    )
    wait_max_s: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="The longest `POST /execute?wait=true` holds the request for the result "
        "before it answers 202 as without it (0: never waits).",
    )
    max_batch: int = Field(
        default=20, ge=1, le=100, description="Submissions in one `POST /executions/batch`."
    )
    max_ids: int = Field(
        default=50, ge=1, le=200, description="Executions one `GET /executions?ids=` reads."
    )

    @model_validator(mode="after")
    def _defaults_within_maximums(self) -> ExecutionSettings:
        problems = self.limit_policy().problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def limit_policy(self) -> LimitPolicy:
        return LimitPolicy(
            base=LimitTable(
                defaults=ResolvedLimits(
                    timeout_s=self.default_timeout_s,
                    memory_mb=self.default_memory_mb,
                    cpu_time_s=self.default_cpu_time_s,
                    max_processes=self.default_processes,
                    max_output_kb=self.default_output_kb,
                ),
                maximums=ResolvedLimits(
                    timeout_s=self.max_timeout_s,
                    memory_mb=self.max_memory_mb,
                    cpu_time_s=self.max_cpu_time_s,
                    max_processes=self.max_processes,
                    max_output_kb=self.max_output_kb,
                ),
            ),
            languages=dict(self.language_limits),
        )

    def policy(self) -> ExecutionPolicy:
        return ExecutionPolicy(
            inputs=InputPolicy(
                max_script_bytes=self.max_script_bytes,
                max_stdin_bytes=self.max_stdin_bytes,
                max_args=self.max_args,
                max_arg_bytes=self.max_arg_bytes,
                max_files=self.max_files,
                max_file_bytes=self.max_file_bytes,
                max_files_total_bytes=self.max_files_total_bytes,
                max_expected_stdout_bytes=self.max_expected_stdout_bytes,
            ),
            limits=self.limit_policy(),
        )


class NotificationSettings(BaseSettings):
    """What ``PUT /notifications/settings`` accepts. Env prefix ``API_NOTIFICATIONS_``."""

    model_config = SettingsConfigDict(env_prefix="API_NOTIFICATIONS_", extra="ignore")

    allow_http: bool = Field(
        default=False,
        description="Accept http:// Slack webhook URLs (local receivers in development); "
        "Slack itself only serves https.",
    )

    def policy(self) -> NotificationPolicy:
        return NotificationPolicy(allow_http_slack=self.allow_http)


class TimelineSettings(BaseSettings):
    """Where ``GET /executions/{id}/timeline`` reads traces. Env prefix ``API_TIMELINE_``."""

    model_config = SettingsConfigDict(env_prefix="API_TIMELINE_", extra="ignore")

    jaeger_query_url: str = Field(
        default="http://127.0.0.1:16686",
        description="Base URL of the Jaeger query API (``/api/traces/{id}`` is read from it).",
    )
    jaeger_ui_url: str = Field(
        default="http://127.0.0.1:16686",
        description="Public base URL of the Jaeger UI, for the links in timelines and the page.",
    )
    query_timeout_s: float = Field(
        default=3.0, gt=0, le=30, description="Timeout of one query to Jaeger (then 503)."
    )


class Settings(BaseSettings):
    """Everything the service reads from its environment, read once in ``__main__``."""

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = Field(default="INFO")
    health_timeout_s: float = Field(default=2.0, gt=0, description="Per-probe readiness timeout.")
    redis_key_prefix: str = Field(
        default="integr8scode:api:", description="Prefix of every Redis key the API writes."
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    heap: HeapSettings = Field(default_factory=HeapSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    timeline: TimelineSettings = Field(default_factory=TimelineSettings)

    @property
    def environment(self) -> str:
        return self.telemetry.environment
