"""``/api/v1/admin/rate-limits``: read and change the rate-limit rules at run time (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from integr8scode_api.dependencies import Context, require_admin
from integr8scode_api.domain.errors import NotFoundError
from integr8scode_api.domain.rate_limit import (
    RULE_NAME_PATTERN,
    Algorithm,
    ListedRule,
    RateLimitRule,
    Scope,
)

router = APIRouter(
    prefix="/admin/rate-limits",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={401: {"description": "No valid token"}, 403: {"description": "Not an admin"}},
)

RuleName = Annotated[str, Path(pattern=RULE_NAME_PATTERN, description="Rule name")]


class RuleSpec(BaseModel):
    """A rule without its name (the name is in the path)."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(
        min_length=1,
        max_length=200,
        description="Glob over 'METHOD /path', e.g. 'POST /api/v1/execute', "
        "'GET /api/v1/executions/*'; without a method: every method",
        examples=["POST /api/v1/execute"],
    )
    limit: int = Field(ge=1, le=1_000_000, description="Requests per window; bucket capacity")
    window_s: float = Field(gt=0, le=86_400, description="Window; for a bucket, full refill time")
    algorithm: Algorithm
    scope: Scope
    enabled: bool = True


class RuleView(RuleSpec):
    name: str
    overridden: bool = Field(description="Set at run time (false: the default from settings)")

    @classmethod
    def of(cls, listed: ListedRule) -> RuleView:
        return cls(**listed.rule.model_dump(), overridden=listed.overridden)


@router.get("")
async def list_rules(ctx: Context) -> list[RuleView]:
    """Every rule in force: the defaults and what admins set."""
    return [RuleView.of(listed) for listed in await ctx.rules.list_rules()]


@router.get("/{name}", responses={404: {"description": "No such rule"}})
async def get_rule(name: RuleName, ctx: Context) -> RuleView:
    for listed in await ctx.rules.list_rules():
        if listed.rule.name == name:
            return RuleView.of(listed)
    raise NotFoundError(f"no rate-limit rule '{name}'")


@router.put("/{name}")
async def put_rule(name: RuleName, spec: RuleSpec, ctx: Context) -> RuleView:
    """Create or replace a rule; this process applies it at once, the others within the
    rules cache TTL."""
    rule = RateLimitRule(name=name, **spec.model_dump())
    await ctx.rules.put(rule)
    return RuleView.of(ListedRule(rule=rule, overridden=True))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No run-time rule of that name"}},
)
async def delete_rule(name: RuleName, ctx: Context) -> Response:
    """Remove a run-time rule; a default of the same name applies again."""
    if not await ctx.rules.delete(name):
        raise NotFoundError(f"no run-time rate-limit rule '{name}' (defaults can't be deleted)")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
