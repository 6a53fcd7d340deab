"""The limits of a run: what a request may ask, the defaults it gets, the maximums it is held to.

Five limits, each optional in a request and resolved on its own: what the request names (if it
is within the maximum), else the default. Defaults and maximums are the platform's
(``API_EXECUTION_*`` settings) unless a language has its own (``API_EXECUTION_LANGUAGE_LIMITS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

LIMIT_NAMES = ("timeout_s", "memory_mb", "cpu_time_s", "max_processes", "max_output_kb")


class RequestRejectedError(ValueError):
    """Why a request can't be accepted (answered 422); the message names the field."""


class Limits(BaseModel):
    """The limits a request asks for; each one left out gets its default (``GET /runtimes``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"timeout_s": 2}, {"cpu_time_s": 1, "max_output_kb": 64}]},
    )

    timeout_s: float | None = Field(
        default=None, gt=0, description="Wall-clock limit of the run, in seconds.", examples=[2]
    )
    memory_mb: int | None = Field(
        default=None,
        gt=0,
        description="Resident memory of the whole run (every process together), in MiB.",
        examples=[128],
    )
    cpu_time_s: float | None = Field(
        default=None,
        gt=0,
        description="CPU time of the whole run (every process together), in seconds; past it "
        "the run ends `failed` with a CPU time error.",
        examples=[1],
    )
    max_processes: int | None = Field(
        default=None,
        ge=1,
        description="Processes and threads the run may have at once; a fork past it fails the "
        "run with a process limit error.",
        examples=[16],
    )
    max_output_kb: int | None = Field(
        default=None,
        ge=1,
        description="Output kept per stream, in KiB: past it the output is cut and "
        "`stdout_truncated`/`stderr_truncated` say so. A program writing more than ten times "
        "this much is stopped (`failed`).",
        examples=[64],
    )


class ResolvedLimits(BaseModel):
    """Every limit of a run, set: what is stored with the execution and sent to the coordinator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(gt=0, description="Wall-clock limit, in seconds.")
    memory_mb: int = Field(gt=0, description="Memory of the whole run, in MiB.")
    cpu_time_s: float = Field(gt=0, description="CPU time of the whole run, in seconds.")
    max_processes: int = Field(gt=0, description="Processes and threads at once.")
    max_output_kb: int = Field(gt=0, description="Output kept per stream, in KiB.")


class LimitOverrides(BaseModel):
    """Some limits, for a language's own defaults or maximums."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    cpu_time_s: float | None = Field(default=None, gt=0)
    max_processes: int | None = Field(default=None, gt=0)
    max_output_kb: int | None = Field(default=None, gt=0)


class LanguageLimits(BaseModel):
    """A language's own defaults and maximums; what it leaves out is the platform's."""

    model_config = ConfigDict(extra="forbid")

    defaults: LimitOverrides = Field(default_factory=LimitOverrides)
    maximums: LimitOverrides = Field(default_factory=LimitOverrides)


class LimitTable(BaseModel):
    """``GET /runtimes``: the default each limit gets and the most a request may ask."""

    model_config = ConfigDict(frozen=True)

    defaults: ResolvedLimits
    maximums: ResolvedLimits


def _merge(base: ResolvedLimits, overrides: LimitOverrides) -> ResolvedLimits:
    return base.model_copy(update=overrides.model_dump(exclude_none=True))


def table_problems(table: LimitTable, where: str) -> list[str]:
    """Defaults above their maximum (a configuration error)."""
    return [
        f"{where}: default {name} {getattr(table.defaults, name):g} is above its maximum "
        f"{getattr(table.maximums, name):g}"
        for name in LIMIT_NAMES
        if getattr(table.defaults, name) > getattr(table.maximums, name)
    ]


@dataclass(frozen=True)
class LimitPolicy:
    """The platform's table and the languages' own."""

    base: LimitTable
    languages: Mapping[str, LanguageLimits] = field(default_factory=dict)

    def table(self, language: str) -> LimitTable:
        own = self.languages.get(language)
        if own is None:
            return self.base
        return LimitTable(
            defaults=_merge(self.base.defaults, own.defaults),
            maximums=_merge(self.base.maximums, own.maximums),
        )

    def problems(self) -> list[str]:
        """Every default above its maximum, for the platform and each language."""
        found = table_problems(self.base, "platform")
        for language in sorted(self.languages):
            found += table_problems(self.table(language), language)
        return found

    def resolve(self, language: str, requested: Limits | None) -> ResolvedLimits:
        """Each limit the request names (within its maximum), else its default."""
        table = self.table(language)
        asked = (requested or Limits()).model_dump(exclude_none=True)
        for name, value in asked.items():
            maximum = getattr(table.maximums, name)
            if value > maximum:
                raise RequestRejectedError(
                    f"limits.{name}: {value:g} is above the maximum {maximum:g} for {language}"
                )
        return table.defaults.model_copy(update=asked)
